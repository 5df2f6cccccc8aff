"""Acceptance 1 and the wire rules, against a running `lmtpd serve`: poplib over plain, STLS
and POP3S; byte-exact RETR and TOP; sizes; line limits; errors; STLS injection; TLS version."""

from __future__ import annotations

import poplib
import re
import socket
import ssl
import subprocess
import time
from typing import Any

import pytest

from tests.conftest import LMTPD, Lmtpd, free_port, lmtp_send, wait_for
from tests.pop3.conftest import (
    RawClient,
    add_mailboxes,
    auth_plain,
    client_context,
    connect,
    login,
    pop3s_port,
    retr_bytes,
    tls_overrides,
)

BODY_LINES = b"".join(b"body line %d\r\n" % n for n in range(1, 11))
MESSAGES = [
    b"From: one@example.net\r\nSubject: first\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n"
    + BODY_LINES,
    b"From: two@example.net\nSubject: second, LF only\n\nplain\n. spaced dot\nend\n",
    b"From: three@example.net\r\nSubject: third\r\n\r\n" + b"x" * 900 + b"\r\n" + BODY_LINES,
]


def crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)


def deliver_all(instance: Lmtpd, address: str, messages: list[bytes] = MESSAGES) -> None:
    for message in messages:
        result = lmtp_send(instance.socket_path, "sender@example.net", [address], message)
        assert result[address][0] == 250, result


def header_and_body(message: bytes) -> tuple[bytes, bytes]:
    head, _, body = crlf(message).partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", body


@pytest.mark.parametrize("mode", ["plain", "stls", "pop3s"])
def test_full_session_over_each_transport(tls_lmtpd: Lmtpd, mode: str) -> None:
    address = f"{mode}@example.org"
    add_mailboxes(tls_lmtpd, address)
    deliver_all(tls_lmtpd, address)

    # Session 1: USER/PASS, every read command, DELE and RSET.
    client = connect(tls_lmtpd, mode)
    assert client.user(address).startswith(b"+OK")
    assert client.pass_("secret").startswith(b"+OK")
    count, total = client.stat()
    assert count == 3
    _, listing, _ = client.list()
    sizes = {int(n): int(s) for n, s in (line.split() for line in listing)}
    assert sum(sizes.values()) == total
    _, uidl_lines, _ = client.uidl()
    uidls = [line.split()[1] for line in uidl_lines]
    assert len(set(uidls)) == 3
    for number, original in enumerate(MESSAGES, 1):
        data, octets = retr_bytes(client, number)
        # The stored copy starts with Return-Path, Delivered-To and Received.
        assert data.endswith(crlf(original))
        assert data.startswith(b"Return-Path: <sender@example.net>\r\nDelivered-To: " +
                               address.encode() + b"\r\n")
        assert octets == len(data) == sizes[number]
        assert client.list(number) == f"+OK {number} {sizes[number]}".encode()
    head, body = header_and_body(MESSAGES[0])
    _, top0, _ = client.top(1, 0)
    top0_bytes = b"".join(line + b"\r\n" for line in top0)
    assert top0_bytes.endswith(head) and top0_bytes.startswith(b"Return-Path:")
    _, top5, _ = client.top(1, 5)
    top5_bytes = b"".join(line + b"\r\n" for line in top5)
    assert top5_bytes == top0_bytes + b"".join(body.split(b"\r\n")[i] + b"\r\n" for i in range(5))
    assert client.dele(2).startswith(b"+OK")
    assert client.stat() == (2, total - sizes[2])
    with pytest.raises(poplib.error_proto, match="deleted"):
        client.retr(2)
    assert client.rset().startswith(b"+OK")
    assert client.stat() == (3, total)
    assert client.noop().startswith(b"+OK")
    assert client.quit().startswith(b"+OK")

    # Session 2: AUTH PLAIN with an initial response; delete message 2 for real.
    client = connect(tls_lmtpd, mode)
    assert auth_plain(client, address, initial=True).startswith(b"+OK")
    assert client.stat() == (3, total)
    client.dele(2)
    assert client.quit().startswith(b"+OK")

    # Session 3: AUTH PLAIN through the "+ " continuation.
    client = connect(tls_lmtpd, mode)
    assert auth_plain(client, address, initial=False).startswith(b"+OK")
    assert client.stat() == (2, total - sizes[2])
    _, uidl_lines, _ = client.uidl()
    assert [line.split()[1] for line in uidl_lines] == [uidls[0], uidls[2]]
    data, _ = retr_bytes(client, 2)
    assert data.endswith(crlf(MESSAGES[2]))
    client.quit()


def test_raw_transfer_is_dot_stuffed_and_sized(tls_lmtpd: Lmtpd) -> None:
    address = "raw@example.org"
    add_mailboxes(tls_lmtpd, address)
    deliver_all(tls_lmtpd, address, MESSAGES[:1])
    raw = RawClient(tls_lmtpd.pop3_port)
    assert raw.command(f"USER {address}").startswith(b"+OK")
    assert raw.command("PASS secret").startswith(b"+OK")
    size = int(raw.command("LIST 1").split()[2])
    status = raw.command("RETR 1")
    assert status == f"+OK {size} octets\r\n".encode()
    transfer = raw.multiline()
    assert b"\r\n..leading dot\r\n...two dots\r\n..\r\nbody line 1\r\n" in transfer
    assert transfer.endswith(b"body line 10\r\n.\r\n")
    assert b"\n" not in transfer.replace(b"\r\n", b"")
    unstuffed = re.sub(rb"(?m)^\.", b"", transfer[:-3])
    assert len(unstuffed) == size
    raw.command("QUIT")
    raw.close()


def test_retr_marks_the_message_seen(tls_lmtpd: Lmtpd) -> None:
    address = "seen@example.org"
    add_mailboxes(tls_lmtpd, address)
    deliver_all(tls_lmtpd, address, MESSAGES[:2])
    client = login(tls_lmtpd, address)
    client.top(1, 0)
    client.retr(2)
    client.quit()
    base = tls_lmtpd.maildir(address)
    assert len(list((base / "new").iterdir())) == 1  # TOP does not mark seen
    [seen] = list((base / "cur").iterdir())
    assert seen.name.endswith(":2,S")
    client = login(tls_lmtpd, address)  # the moved file is still served, same UIDL
    data, _ = retr_bytes(client, 2)
    assert data.endswith(crlf(MESSAGES[1]))
    client.quit()
    assert tls_lmtpd.cli("verify").returncode == 0


def test_vanished_file_gets_sys_temp_and_the_session_goes_on(tls_lmtpd: Lmtpd) -> None:
    address = "vanish@example.org"
    add_mailboxes(tls_lmtpd, address)
    deliver_all(tls_lmtpd, address, MESSAGES[:2])
    client = login(tls_lmtpd, address)
    uidl = client.uidl(1).split()[2].decode()
    [first] = (tls_lmtpd.maildir(address) / "new").glob(uidl + ",*")
    first.unlink()  # behind the server's back
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        client.retr(1)
    data, _ = retr_bytes(client, 2)
    assert data.endswith(crlf(MESSAGES[1]))
    client.quit()


def test_pipelined_commands(tls_lmtpd: Lmtpd) -> None:
    address = "pipe@example.org"
    add_mailboxes(tls_lmtpd, address)
    deliver_all(tls_lmtpd, address, MESSAGES[:2])
    raw = RawClient(tls_lmtpd.pop3_port)
    raw.send(f"CAPA\r\nUSER {address}\r\nPASS secret\r\nSTAT\r\nLIST\r\nTOP 2 0\r\nNOOP\r\n"
             "QUIT\r\n".encode())
    assert raw.line().startswith(b"+OK")
    assert b"PIPELINING" in raw.multiline()
    assert raw.line().startswith(b"+OK")
    assert raw.line().startswith(b"+OK Logged in, 2 messages")
    assert raw.line().startswith(b"+OK 2 ")
    assert raw.line().startswith(b"+OK 2 messages")
    assert raw.multiline().count(b"\r\n") == 3
    assert raw.line().startswith(b"+OK")
    assert raw.multiline().endswith(b"\r\n\r\n.\r\n")
    assert raw.line() == b"+OK\r\n"
    assert raw.line().startswith(b"+OK Logging out")
    assert raw.line() == b""
    raw.close()


def test_bad_input_gets_err_and_the_session_goes_on(tls_lmtpd: Lmtpd) -> None:
    raw = RawClient(tls_lmtpd.pop3_port)
    assert raw.command("X" * 300) == b"-ERR Line too long.\r\n"
    raw.send(b"USER " + b"y" * 5000 + b"\r\n")
    assert raw.line() == b"-ERR Line too long.\r\n"
    assert raw.command("FROB") == b"-ERR Unknown command.\r\n"
    assert raw.command("STAT") == b"-ERR Not logged in.\r\n"
    assert raw.command("RETR 1") == b"-ERR Not logged in.\r\n"
    assert raw.command("CAPA").startswith(b"+OK")
    raw.multiline()
    assert raw.command("QUIT").startswith(b"+OK")
    raw.close()


def test_too_many_errors_close_the_connection(tls_lmtpd: Lmtpd) -> None:
    raw = RawClient(tls_lmtpd.pop3_port)
    replies = [raw.command(f"BAD{n}") for n in range(10)]
    assert all(r.startswith(b"-ERR") for r in replies)
    assert b"Too many" in replies[-1]
    assert raw.line() == b""
    raw.close()


def test_stls_drops_commands_injected_before_the_handshake(tls_lmtpd: Lmtpd) -> None:
    raw = RawClient(tls_lmtpd.pop3_port)
    raw.send(b"STLS\r\nCAPA\r\n")
    assert raw.line().startswith(b"+OK Begin TLS")
    tls = client_context().wrap_socket(raw.sock, server_hostname="localhost")
    tls.sendall(b"QUIT\r\n")
    assert tls.makefile("rb").readline().startswith(b"+OK Logging out")
    tls.close()


def test_capa_offers_stls_only_before_tls(tls_lmtpd: Lmtpd) -> None:
    client = connect(tls_lmtpd, "plain")
    assert "STLS" in client.capa()
    client.stls(client_context())
    assert "STLS" not in client.capa()
    assert "USER" in client.capa()
    client.quit()
    client = connect(tls_lmtpd, "pop3s")
    assert "STLS" not in client.capa()
    client.quit()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_is_1_2_or_newer(tls_lmtpd: Lmtpd) -> None:
    context = client_context()
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", pop3s_port(tls_lmtpd)), timeout=10) as sock, \
            pytest.raises((ssl.SSLError, ConnectionError)):
        context.wrap_socket(sock, server_hostname="localhost")
    client = connect(tls_lmtpd, "pop3s")
    assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
    client.quit()


def test_failed_tls_handshake_does_not_hurt_the_server(tls_lmtpd: Lmtpd) -> None:
    with socket.create_connection(("127.0.0.1", pop3s_port(tls_lmtpd)), timeout=10) as sock:
        sock.sendall(b"USER plaintext-on-a-tls-port\r\n")
        sock.recv(100)
    client = connect(tls_lmtpd, "pop3s")
    assert "USER" in client.capa()
    client.quit()


@pytest.fixture
def limited(lmtpd_factory: Any) -> Lmtpd:
    instance = lmtpd_factory({"pop3": {"timeout": 1, "max_connections_per_ip": 2,
                                       "max_connections": 3, "max_errors": 2,
                                       "login_failure_delay": 0}})
    add_mailboxes(instance, "alice@example.org")
    instance.start()
    return instance


def test_idle_timeout_and_connection_limits(limited: Lmtpd) -> None:
    first, second = RawClient(limited.pop3_port), RawClient(limited.pop3_port)
    assert first.greeting.startswith(b"+OK") and second.greeting.startswith(b"+OK")
    third = RawClient(limited.pop3_port)
    assert third.greeting.startswith(b"-ERR [SYS/TEMP]")
    assert third.line() == b""
    third.close()
    started = time.monotonic()
    assert first.line() == b"-ERR Disconnected for inactivity.\r\n"
    assert first.line() == b""
    assert time.monotonic() - started < 5
    second.close()
    first.close()

    def slot_is_free() -> bool:
        client = RawClient(limited.pop3_port)
        free = client.greeting.startswith(b"+OK")
        client.close()
        return free

    # The slots are free again once the server saw the connections end.
    assert wait_for(slot_is_free, 5)
    # max_errors = 2: the second failed login closes the connection.
    raw = RawClient(limited.pop3_port)
    raw.command("USER alice@example.org")
    assert raw.command("PASS wrong").startswith(b"-ERR [AUTH]")
    raw.command("USER alice@example.org")
    assert raw.command("PASS wrong").startswith(b"-ERR Too many")
    assert raw.line() == b""
    raw.close()


def test_tls_listener_needs_a_certificate(lmtpd_factory: Any) -> None:
    instance = lmtpd_factory({"pop3": {"tls_listen": [f"127.0.0.1:{free_port()}"]}})
    result = subprocess.run([LMTPD, "--config", str(instance.config_path), "serve"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "pop3.tls_cert" in result.stderr


def test_stls_and_pop3s_on_a_second_server(lmtpd_factory: Any,
                                           tls_files: tuple[str, str]) -> None:
    instance = lmtpd_factory(tls_overrides(tls_files, listen=[]))
    add_mailboxes(instance, "carol@example.org")
    instance.start()
    assert "pop3s=127.0.0.1:" in instance.log()
    client = connect(instance, "pop3s")
    client.user("carol@example.org")
    client.pass_("secret")
    assert client.stat() == (0, 0)
    client.quit()
