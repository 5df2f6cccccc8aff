"""Timeouts count seconds of silence, not the length of a phase: a slow sender or a slow
reader is served to the end, a silent one is dropped (LMTP against `lmtp.timeout`, POP3
against `pop3.timeout`), over the sockets of a running `lmtpd serve`."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Lmtpd, RawLmtp
from tests.pop3.conftest import PASSWORD, add_mailboxes, message_files

TIMEOUT = 3


@pytest.fixture
def server(lmtpd_factory: Any) -> Iterator[Lmtpd]:
    instance = lmtpd_factory({"lmtp": {"timeout": TIMEOUT}, "pop3": {"timeout": TIMEOUT}})
    add_mailboxes(instance, "slow@example.org")
    instance.start()
    yield instance


def start_data(client: RawLmtp) -> None:
    assert client.command("LHLO client.example").startswith(b"250")
    assert client.command("MAIL FROM:<s@remote.example>").startswith(b"250")
    assert client.command("RCPT TO:<slow@example.org>").startswith(b"250")
    assert client.command("DATA").startswith(b"354")
    client.send(b"Subject: slow\r\n\r\n")


def test_a_slow_sender_is_not_cut_off(server: Lmtpd) -> None:
    client = RawLmtp(server.socket_path)
    try:
        start_data(client)
        started = time.monotonic()
        line = 0
        while time.monotonic() - started < 8:  # well past lmtp.timeout, one line a second
            client.send(b"line %d\r\n" % line)
            line += 1
            time.sleep(1)
        client.send(b".\r\n")
        assert client.reply().startswith(b"250 2.0.0")
    finally:
        client.close()
    [path] = message_files(server, "slow@example.org")
    assert path.read_bytes().endswith(b"line %d\n" % (line - 1))


def test_a_silent_sender_is_dropped_and_nothing_is_stored(server: Lmtpd) -> None:
    client = RawLmtp(server.socket_path)
    try:
        start_data(client)
        client.send(b"first line\r\n")
        time.sleep(TIMEOUT + 2)
        # The server closed the connection: what is sent now is lost, and no reply comes.
        with contextlib.suppress(OSError):
            client.send(b"second line\r\n.\r\n")
        assert client.file.readline() == b""
    finally:
        client.close()
    assert message_files(server, "slow@example.org") == []


def test_a_silent_lmtp_client_between_commands_is_dropped(server: Lmtpd) -> None:
    client = RawLmtp(server.socket_path)
    try:
        assert client.command("LHLO client.example").startswith(b"250")
        time.sleep(TIMEOUT + 2)
        assert client.file.readline() == b""
    finally:
        client.close()


def test_a_slow_pop3_reader_gets_the_whole_message(lmtpd_factory: Any) -> None:
    """RETR of a message larger than the socket buffers, read more slowly than the server
    writes it: the transfer takes many times pop3.timeout, but the client never falls silent
    for that long, so it gets every octet."""
    instance = lmtpd_factory({"pop3": {"timeout": 2}})
    add_mailboxes(instance, "slow@example.org")
    # Larger than what the kernel buffers on both sides of a loopback connection hold.
    body = b"".join(b"%07d %s\n" % (n, b"p" * 90) for n in range(80_000))  # ~8 MB
    message = b"Subject: big\n\n" + body
    instance.cli("deliver", "slow@example.org", input=message)
    instance.start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.connect(("127.0.0.1", instance.pop3_port))
    sock.settimeout(30)
    try:
        reader = sock.makefile("rb", buffering=0)
        assert reader.readline().startswith(b"+OK")
        sock.sendall(f"USER slow@example.org\r\nPASS {PASSWORD}\r\n".encode())
        assert reader.readline().startswith(b"+OK")
        assert reader.readline().startswith(b"+OK")
        sock.sendall(b"RETR 1\r\n")
        started = time.monotonic()
        received = bytearray()
        end = -1
        while end < 0:
            chunk = sock.recv(16 * 1024)  # at most about 500 KB/s
            assert chunk, f"dropped after {len(received)} octets"
            received += chunk
            # The terminating dot line cannot occur earlier in a dot-stuffed transfer.
            end = received.find(b"\r\n.\r\n", max(0, len(received) - len(chunk) - 4))
            time.sleep(0.03)
        assert time.monotonic() - started > 6  # the transfer did outlast the timeout
    finally:
        sock.close()
    [path] = message_files(instance, "slow@example.org")
    status, _, transfer = bytes(received).partition(b"\r\n")
    assert status.startswith(b"+OK")
    transfer = transfer[: transfer.find(b"\r\n.\r\n") + 5]
    assert transfer == path.read_bytes().replace(b"\n", b"\r\n") + b".\r\n"
