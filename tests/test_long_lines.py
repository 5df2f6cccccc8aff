"""Lines of any length in a message: delivered over LMTP and with `lmtpd deliver`, stored byte
for byte, sent back byte for byte by POP3 RETR with LIST giving the octets RETR sends, and
retrieved by fetchmail and getmail. Also a message without a final newline."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LMTPD, Lmtpd, lmtp_send, require_tool
from tests.pop3.conftest import PASSWORD, RawClient, add_mailboxes, message_files

LENGTHS = (1_000, 5_000, 100_000, 2_000_000)
TRACE_FIELDS = (b"return-path:", b"delivered-to:", b"received:", b"x-original-to:")


def long_line_message(length: int) -> bytes:
    """A message (LF line ends) whose body holds one line of `length` octets, starting with a
    dot and holding the odd dot, so that stuffing is exercised too."""
    line = (b"." + b"<p>long line of %d octets " % length + b"x. " * length)[:length]
    return (b"From: s@remote.example\nTo: long@example.org\nSubject: line of %d\n"
            b"Message-ID: <long-%d@remote.example>\n\n" % (length, length)
            + b"before\n" + line + b"\n.after\n")


NO_FINAL_NEWLINE = (b"From: s@remote.example\nSubject: no final newline\n"
                    b"Message-ID: <nofinal@remote.example>\n\nlast line without LF")


def without_trace_fields(stored: bytes) -> bytes:
    """The stored file minus the fields lmtpd puts on top."""
    lines = stored.split(b"\n")
    start = 0
    while lines[start].lower().startswith(TRACE_FIELDS) or lines[start].startswith(b" "):
        start += 1
    return b"\n".join(lines[start:])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lmtpd]:
    instance = Lmtpd(tmp_path_factory.mktemp("long"))
    add_mailboxes(instance, "lmtp@example.org", "cli@example.org", "fetch@example.org",
                  "getmail@example.org")
    instance.start()
    yield instance
    instance.stop()


def deliver_over_lmtp(server: Lmtpd, address: str, message: bytes) -> None:
    result = lmtp_send(server.socket_path, "s@remote.example", [address], message)
    assert result[address][0] == 250, result


def deliver_with_cli(server: Lmtpd, address: str, message: bytes) -> None:
    result = subprocess.run(
        [LMTPD, "--config", str(server.config_path), "deliver", "--sender", "s@remote.example",
         address], input=message, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr


def pop3_messages(server: Lmtpd, address: str) -> list[tuple[int, bytes]]:
    """(LIST size, RETR bytes unstuffed) of every message, read raw: poplib refuses lines
    over 2,048 octets."""
    client = RawClient(server.pop3_port)
    try:
        assert client.command(f"USER {address}").startswith(b"+OK")
        assert client.command(f"PASS {PASSWORD}").startswith(b"+OK")
        count = int(client.command("STAT").split()[1])
        found = []
        for number in range(1, count + 1):
            size = int(client.command(f"LIST {number}").split()[2])
            assert client.command(f"RETR {number}").startswith(b"+OK")
            transfer = client.multiline()[: -len(b".\r\n")]
            lines = transfer.split(b"\r\n")
            unstuffed = b"\r\n".join(line[1:] if line.startswith(b".") else line
                                     for line in lines)
            found.append((size, unstuffed))
        client.command("QUIT")
        return found
    finally:
        client.close()


@pytest.mark.parametrize("how", ["lmtp", "cli"])
def test_long_lines_are_stored_and_retrieved_byte_for_byte(server: Lmtpd, how: str) -> None:
    address = f"{how}@example.org"
    deliver = deliver_over_lmtp if how == "lmtp" else deliver_with_cli
    messages = [long_line_message(n) for n in LENGTHS]
    for message in messages:
        deliver(server, address, message)
    files = sorted(message_files(server, address), key=lambda p: p.name)
    stored = [path.read_bytes() for path in files]
    assert sorted(without_trace_fields(s) for s in stored) == sorted(messages)
    retrieved = pop3_messages(server, address)
    assert sorted(r for _, r in retrieved) == sorted(s.replace(b"\n", b"\r\n") for s in stored)
    for size, message in retrieved:
        assert size == len(message)
    assert server.cli("verify").returncode == 0


def test_message_without_final_newline_lists_the_octets_retr_sends(server: Lmtpd) -> None:
    address = "nofinal@example.org"
    add_mailboxes(server, address)
    deliver_with_cli(server, address, NO_FINAL_NEWLINE)
    [path] = message_files(server, address)
    stored = path.read_bytes()
    assert stored.endswith(b"\n\nlast line without LF")
    # The same message dropped into new/ by another program, named without sizes: reindex
    # measures it.
    (path.parent / "1700000000.M1P1.elsewhere").write_bytes(stored)
    server.cli("reindex", address)
    retrieved = pop3_messages(server, address)
    assert len(retrieved) == 2
    for size, message in retrieved:
        assert message == stored.replace(b"\n", b"\r\n") + b"\r\n"
        assert size == len(message)
    assert server.cli("verify").returncode == 0


def test_fetchmail_retrieves_long_lines(server: Lmtpd, tmp_path: Path) -> None:
    """fetchmail reads a message into an 8 KB buffer and breaks a longer line at each 8 KB
    (its readbody guards against very long lines that way), so only lines up to that size
    can come out of it byte for byte; the longer ones must still be retrieved, whole."""
    fetchmail = require_tool("fetchmail")
    address = "fetch@example.org"
    messages = {n: long_line_message(n) for n in LENGTHS}
    for message in messages.values():
        deliver_over_lmtp(server, address, message)
    output = tmp_path / "fetched"
    output.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    rc = home / ".fetchmailrc"
    rc.write_text(
        f"poll 127.0.0.1 service {server.pop3_port} protocol pop3 auth password\n"
        f'  user "{address}" there with password "{PASSWORD}" is "root" here\n'
        "  sslproto ''\n"
        f'  mda "cat > {output}/$$"\n'
        "  fetchall no keep\n"
    )
    rc.chmod(0o600)
    result = subprocess.run(
        [fetchmail, "-f", str(rc), "-N", "--nosyslog", "-v", "--pidfile", str(home / "pid")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home)},
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert log.count(" flushed") == len(messages), log
    fetched = {copy.split(b"Subject: line of ", 1)[1].split(b"\n", 1)[0]: copy
               for copy in (path.read_bytes() for path in output.iterdir())}
    assert sorted(fetched) == sorted(b"%d" % n for n in LENGTHS)
    for length, message in messages.items():
        copy = fetched[b"%d" % length]
        if length <= 8000:
            # fetchmail adds its own Received: on top; the rest is the message as stored.
            assert copy.endswith(message)
        else:
            head, _, tail = message.partition(b"before\n")
            assert copy.endswith(tail[-200:]) and head.split(b"\n", 1)[1] in copy
            assert len(copy) >= len(message)
    assert not message_files(server, address)


def test_getmail_retrieves_long_lines(server: Lmtpd, tmp_path: Path) -> None:
    """getmail reads POP3 with poplib, whose line limit it raises to 1 MiB: lines up to that
    come out byte for byte (a 2,000,000-octet line is over getmail's own limit)."""
    getmail = require_tool("getmail")
    address = "getmail@example.org"
    messages = [long_line_message(n) for n in (*LENGTHS[:-1], 1_000_000)]
    for message in messages:
        deliver_over_lmtp(server, address, message)
    output = tmp_path / "fetched"
    output.mkdir()
    config = tmp_path / "getmail"
    config.mkdir()
    (config / "getmailrc").write_text(
        "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\n"
        f"port = {server.pop3_port}\nusername = {address}\npassword = {PASSWORD}\n"
        "\n[destination]\ntype = MDA_external\npath = /bin/sh\n"
        f'arguments = ("-c", "cat > {output}/$$$$")\nallow_root_commands = true\n'
        "\n[options]\nread_all = true\ndelete = true\n"
    )
    result = subprocess.run(
        [getmail, "--getmaildir", str(config), "--rcfile", "getmailrc"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fetched = [path.read_bytes() for path in output.iterdir()]
    assert len(fetched) == len(messages)
    # getmail writes its own header fields on top (and may refold headers): the body, long
    # line included, is what was delivered.
    for message in messages:
        body = message.split(b"\n\n", 1)[1]
        assert sum(copy.endswith(b"\n\n" + body) for copy in fetched) == 1
    assert not message_files(server, address)
