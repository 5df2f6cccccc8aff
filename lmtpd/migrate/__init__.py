"""Moving users and mail from other servers into lmtpd (`lmtpd import ...`)."""
