from lmtpd.cli import main

main()
