"""Every delivery and every POP3 login writes exactly one greppable line; no password in logs."""

from __future__ import annotations

import poplib

import pytest

from tests.conftest import Lmtpd, lmtp_send, wait_for


def test_pop3_session_log_lines(lmtpd: Lmtpd) -> None:
    for i in range(3):
        lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                  f"Message-ID: <log{i}@x>\r\nSubject: {i}\r\n\r\nbody\r\n".encode())
    bad = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    bad.user("alice@example.org")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        bad.pass_("wrong-password")
    bad.quit()
    client = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    client.user("alice@example.org")
    client.pass_("secret")
    for n in (1, 2, 3):
        client.retr(n)
        client.dele(n)
    client.quit()

    def grep(text: str) -> list[str]:
        return [line for line in lmtpd.log_lines if text in line]

    assert wait_for(lambda: grep("logout user=alice@example.org"))
    assert len(grep("delivered rcpt=<alice@example.org>")) == 3
    assert len(grep("login-failed user=alice@example.org")) == 1
    [login] = grep("pop3: login user=alice@example.org")
    assert "ip=127.0.0.1" in login
    [logout] = grep("logout user=alice@example.org")
    assert logout.endswith("retr=3 dele=3")
    assert "wrong-password" not in lmtpd.log() and "secret" not in lmtpd.log()
