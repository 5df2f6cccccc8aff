"""The mail store: Maildir files, the SQLite index, and what is built on both."""
