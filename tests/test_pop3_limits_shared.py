"""POP3 connection limits and the mailbox lock hold across server processes."""

from __future__ import annotations

import poplib
import socket

from lmtpd.shared import ConnectionCounts
from tests.conftest import Lmtpd


def test_limits_are_counted_once_for_all_processes() -> None:
    limits = ConnectionCounts(2)
    assert limits.acquire("192.0.2.1", 3, 2)
    assert limits.acquire("192.0.2.1", 3, 2)
    assert not limits.acquire("192.0.2.1", 3, 2)  # per address
    assert limits.acquire("192.0.2.2", 3, 2)
    assert not limits.acquire("192.0.2.3", 3, 2)  # overall
    limits.release("192.0.2.1")
    assert limits.acquire("192.0.2.3", 3, 2)
    assert limits.total == 3
    # Another process's connections count against the same limits...
    limits.process = 1
    assert not limits.acquire("192.0.2.4", 3, 2)  # overall: 3 of 3 are open
    assert limits.acquire("192.0.2.2", 4, 2)
    assert not limits.acquire("192.0.2.2", 5, 2)  # per address, over both processes
    # ...and when that process ends, what it held is given back.
    limits.forget(1)
    assert limits.total == 3
    assert limits.acquire("192.0.2.2", 4, 2)


def test_two_processes_share_limits_and_mailbox_lock(lmtpd_factory) -> None:
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2, "pop3": {"max_connections_per_ip": 4}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    # Many connections: the kernel spreads them over both processes, yet exactly 4 get in.
    held = []
    refused = 0
    for _ in range(12):
        sock = socket.create_connection(("127.0.0.1", lmtpd.pop3_port), timeout=10)
        greeting = sock.recv(200)
        if greeting.startswith(b"+OK"):
            held.append(sock)
        else:
            assert greeting.startswith(b"-ERR [SYS/TEMP]")
            refused += 1
            sock.close()
    assert (len(held), refused) == (4, 8)
    for sock in held:
        sock.close()

    # Whichever process each login lands on, the second one is refused while the first lasts.
    for _ in range(6):
        first = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
        first.user("alice@example.org")
        first.pass_("secret")
        second = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
        second.user("alice@example.org")
        try:
            second.pass_("secret")
            raise AssertionError("a second session got the mailbox")
        except poplib.error_proto as error:
            assert b"[IN-USE]" in error.args[0]
        second.quit()
        first.quit()
