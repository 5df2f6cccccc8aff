"""lmtpd: a local delivery agent (LMTP in, Sieve, Maildir + SQLite) with a POP3 server."""

__version__ = "0.1.0"
