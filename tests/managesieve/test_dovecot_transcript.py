"""One ManageSieve transcript against Dovecot's managesieved and against lmtpd: every command
gets the same OK or NO, with the same response code, from both."""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Lmtpd
from tests.managesieve.conftest import RawClient, add_mailboxes, sieve_overrides, sieve_port
from tests.managesieve.dovecot import ManageSieved

USER, PASSWORD = "alice@example.org", "secret"
MAX_SCRIPTS, MAX_SIZE = 3, 1024
GOOD = 'require "fileinto";\r\nif header :contains "Subject" "x" { fileinto "X"; }\r\n'
BAD = 'require "fileinto";\r\nfileinto "X"\r\n'


def literal(text: str, plus: bool = True) -> bytes:
    data = text.encode()
    return b"{%d%s}\r\n%s" % (len(data), b"+" if plus else b"", data)


def plain(password: str) -> bytes:
    return base64.b64encode(f"\0{USER}\0{password}".encode())


TRANSCRIPT: list[bytes] = [
    b"CAPABILITY",
    b"NOOP",
    b"LISTSCRIPTS",
    b'AUTHENTICATE "PLAIN" "' + plain("wrong") + b'"',
    b'AUTHENTICATE "PLAIN" "' + plain(PASSWORD) + b'"',
    b"CAPABILITY",
    b"LISTSCRIPTS",
    b'HAVESPACE "a" 100',
    b'HAVESPACE "a" 0',
    b'HAVESPACE "a" 5000',
    b"CHECKSCRIPT " + literal(GOOD),
    b"CHECKSCRIPT " + literal(BAD),
    b'PUTSCRIPT "a" ' + literal(GOOD, plus=False),
    b'PUTSCRIPT "b" ' + literal(BAD),
    b'PUTSCRIPT "x/y" ' + literal(GOOD),
    b'PUTSCRIPT "big" ' + literal("#" * 2000),
    b'PUTSCRIPT "b" ' + literal("keep;\r\n"),
    b'PUTSCRIPT "c" ' + literal(""),
    b'PUTSCRIPT "d" ' + literal("keep;\r\n"),
    b'HAVESPACE "d" 10',
    b'HAVESPACE "c" 10',
    b'PUTSCRIPT "c" ' + literal("discard;\r\n"),
    b"LISTSCRIPTS",
    b'GETSCRIPT "a"',
    b'GETSCRIPT "zz"',
    b'SETACTIVE "zz"',
    b'SETACTIVE "a"',
    b'SETACTIVE "a"',
    b"LISTSCRIPTS",
    b'DELETESCRIPT "a"',
    b'DELETESCRIPT "zz"',
    b'RENAMESCRIPT "zz" "y"',
    b'RENAMESCRIPT "a" "b"',
    b'RENAMESCRIPT "a" "a"',
    b'RENAMESCRIPT "a" "x/y"',
    b'RENAMESCRIPT "a" "a2"',
    b"LISTSCRIPTS",
    b'GETSCRIPT "x/y"',
    b'DELETESCRIPT "x/y"',
    b'SETACTIVE ""',
    b'SETACTIVE ""',
    b"LISTSCRIPTS",
    b'DELETESCRIPT "a2"',
    b'NOOP "tag1"',
    b'AUTHENTICATE "PLAIN" "' + plain(PASSWORD) + b'"',
    b"BOGUS",
    b"LISTSCRIPTS",
    b"LOGOUT",
]

_STATUS = re.compile(rb"^(OK|NO|BYE)(?: \(([^)]*)\))?")


def run(port: int) -> list[tuple[str, str, str, frozenset[bytes]]]:
    """(command, status, response code, data lines) for each command of the transcript."""
    client = RawClient(port)
    outcomes = []
    try:
        for command in TRANSCRIPT:
            lines = client.command(command + b"\r\n")
            status_line = next(line for line in lines if _STATUS.match(line))
            match = _STATUS.match(status_line)
            assert match is not None
            data = frozenset(line for line in lines[:lines.index(status_line)]
                             if command.startswith((b"LISTSCRIPTS", b"GETSCRIPT")))
            outcomes.append((command.split(b" ")[0].decode() + " " + _argument(command),
                             match.group(1).decode(), (match.group(2) or b"").decode(), data))
    finally:
        client.close()
    return outcomes


def _argument(command: bytes) -> str:
    parts = command.split(b" ", 2)
    return parts[1].decode()[:20] if len(parts) > 1 else ""


@pytest.fixture
def dovecot() -> Iterator[ManageSieved]:
    root = Path(tempfile.mkdtemp(prefix="lmtpd-managesieved-"))
    server = ManageSieved(root, USER, PASSWORD, max_scripts=MAX_SCRIPTS,
                          max_script_size=MAX_SIZE)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_same_answers_as_dovecot(dovecot: ManageSieved, lmtpd_factory) -> None:
    lmtpd: Lmtpd = lmtpd_factory({**sieve_overrides(max_scripts=MAX_SCRIPTS),
                                  "sieve": {"max_script_size": MAX_SIZE},
                                  "pop3": {"login_failure_delay": 0.1}})
    add_mailboxes(lmtpd, USER)
    lmtpd.start()
    theirs = run(dovecot.port)
    ours = run(sieve_port(lmtpd))
    assert [o[:3] for o in ours] == [t[:3] for t in theirs]
    # Listings (in any order) and fetched scripts are the same too.
    for (command, _, _, our_data), (_, _, _, their_data) in zip(ours, theirs, strict=True):
        if command.startswith(("LISTSCRIPTS", "GETSCRIPT")):
            assert our_data == their_data, command
    # The transcript exercises every response code lmtpd gives for scripts.
    codes = {code for _, _, code, _ in theirs}
    assert {"NONEXISTENT", "ACTIVE", "ALREADYEXISTS", "QUOTA/MAXSCRIPTS",
            "QUOTA/MAXSIZE"} <= codes
