"""What Postfix asks lmtpd before it accepts a recipient: socketmap tables and SMTPD policy
delegation, as sans-I/O protocols and the lookups behind them."""
