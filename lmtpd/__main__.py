"""`python -m lmtpd`: the same program as the `lmtpd` command."""

from lmtpd.cli import main

main()
