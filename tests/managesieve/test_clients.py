"""Real ManageSieve clients against a running lmtpd: sievelib (Roundcube's managesieve
plugin) and sieve-connect; a script they put and activate runs at the next delivery."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sievelib.managesieve import Client

from tests.conftest import Lmtpd, lmtp_send, require_tool
from tests.managesieve.conftest import (
    PASSWORD,
    RawClient,
    add_mailboxes,
    deliveries,
    sieve_port,
)

FILE_INTO = 'require "fileinto";\nfileinto "{folder}";\n'
MESSAGE = b"From: someone@example.net\r\nSubject: hello\r\n\r\nhi\r\n"


@pytest.fixture(autouse=True)
def _plaintext_on_loopback_is_intended() -> None:
    """sievelib warns about credentials without TLS; on loopback that is the point."""
    import warnings

    warnings.filterwarnings("ignore", "Credentials are sent over an unencrypted connection")


@contextlib.contextmanager
def sievelib_client(instance: Lmtpd, user: str, *, starttls: bool = False) -> Iterator[Client]:
    """sievelib's client, logged in as `user`, logged out at the end."""
    client = Client("localhost", sieve_port(instance))
    assert client.connect(user, PASSWORD, starttls=starttls, authmech="PLAIN")
    try:
        yield client
    finally:
        client.logout()


def test_sievelib_does_everything(sieve_lmtpd: Lmtpd) -> None:
    user = "lib@example.org"
    add_mailboxes(sieve_lmtpd, user)
    with sievelib_client(sieve_lmtpd, user) as client:
        assert client.get_implementation() == "lmtpd"
        assert "fileinto" in client.get_sieve_capabilities()
        assert client.listscripts() == (None, [])
        assert client.havespace("one", 100)
        assert client.checkscript(FILE_INTO.format(folder="One"))
        assert not client.checkscript('require "fileinto";\nfileinto "x"\n')
        assert client.putscript("one", FILE_INTO.format(folder="One"))
        assert client.putscript("two", FILE_INTO.format(folder="Two"))
        assert client.setactive("one")
        assert client.listscripts() == ("one", ["two"])
        # sievelib sends CRLF line ends and joins the lines it gets back with LF.
        assert client.getscript("two") == FILE_INTO.format(folder="Two").rstrip("\n")
        assert client.renamescript("one", "first")
        assert client.listscripts() == ("first", ["two"])  # still active under its new name
        assert not client.deletescript("first")  # the active script cannot go
        assert b"ACTIVE" in client.errcode
        assert client.deletescript("two")
        assert client.listscripts() == ("first", [])
        assert not client.getscript("two")
        assert client.errcode == b"NONEXISTENT"
    lmtp_send(sieve_lmtpd.socket_path, "x@example.net", [user], MESSAGE)
    assert len(deliveries(sieve_lmtpd, user, "One")) == 1


def test_the_script_activated_last_runs_at_the_next_delivery(sieve_lmtpd: Lmtpd) -> None:
    user = "next@example.org"
    add_mailboxes(sieve_lmtpd, user)
    for folder in ("A", "B", "A"):
        with sievelib_client(sieve_lmtpd, user) as client:
            assert client.putscript(f"to-{folder}", FILE_INTO.format(folder=folder))
            assert client.setactive(f"to-{folder}")
        before = len(deliveries(sieve_lmtpd, user, folder))
        lmtp_send(sieve_lmtpd.socket_path, "x@example.net", [user], MESSAGE)
        assert len(deliveries(sieve_lmtpd, user, folder)) == before + 1
    with sievelib_client(sieve_lmtpd, user) as client:
        assert client.setactive("")
    lmtp_send(sieve_lmtpd.socket_path, "x@example.net", [user], MESSAGE)
    assert len(deliveries(sieve_lmtpd, user)) == 1  # no script active: INBOX


def test_sievelib_over_starttls(sieve_lmtpd: Lmtpd, localhost_cert: tuple[str, str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    user = "tls@example.org"
    add_mailboxes(sieve_lmtpd, user)
    monkeypatch.setenv("SSL_CERT_FILE", localhost_cert[0])
    with sievelib_client(sieve_lmtpd, user, starttls=True) as client:
        assert client.putscript("main", "keep;\n")
        assert client.listscripts() == (None, ["main"])


def test_a_script_that_does_not_compile_changes_nothing(sieve_lmtpd: Lmtpd) -> None:
    user = "broken@example.org"
    add_mailboxes(sieve_lmtpd, user)
    with sievelib_client(sieve_lmtpd, user) as client:
        assert client.putscript("main", "keep;\n")
        assert not client.putscript("main", 'require "fileinto";\nfileinto "x"\n')
        assert b"line 3, column 1" in client.errmsg
        assert not client.putscript("other", "discard\n")
        assert client.listscripts() == (None, ["main"])
        assert client.getscript("main") == "keep;"


def test_limits_on_count_and_size(sieve_lmtpd: Lmtpd) -> None:
    user = "limits@example.org"
    add_mailboxes(sieve_lmtpd, user)
    with sievelib_client(sieve_lmtpd, user) as client:
        for number in range(5):
            assert client.putscript(f"s{number}", "keep;\n")
        assert not client.putscript("s5", "keep;\n")
        assert client.errcode == b"QUOTA/MAXSCRIPTS"
        assert not client.havespace("s5", 10)
        assert client.putscript("s4", "discard;\n")  # a replacement is no new script
        assert not client.putscript("s0", "#" * 5000)
        assert client.errcode == b"QUOTA/MAXSIZE"
        assert client.getscript("s0") == "keep;"
        assert not client.renamescript("s0", "s1")
        assert client.errcode == b"ALREADYEXISTS"


def test_literals_in_both_forms_and_the_cli_sees_the_same_scripts(sieve_lmtpd: Lmtpd) -> None:
    user = "raw@example.org"
    add_mailboxes(sieve_lmtpd, user)
    raw = RawClient(sieve_port(sieve_lmtpd))
    try:
        blob = base64.b64encode(f"\0{user}\0{PASSWORD}".encode())
        raw.sock.sendall(b'AUTHENTICATE "PLAIN"\r\n')
        assert raw.file.readline() == b'""\r\n'  # PLAIN's empty challenge
        reply = raw.command(b"{%d}\r\n%s\r\n" % (len(blob), blob))
        assert reply == [b'OK "Logged in."\r\n']
        assert raw.command(b'PUTSCRIPT "sync" {6}\r\nkeep;\n\r\n')[-1].startswith(b"OK")
        assert raw.command(b'PUTSCRIPT {5+}\r\nplus! {8+}\r\ndiscard;\r\n')[-1].startswith(
            b"OK")
        assert raw.command(b'SETACTIVE "plus!"\r\n')[-1].startswith(b"OK")
        assert raw.command(b"UNAUTHENTICATE\r\n") == [b'OK "Unauthenticate completed."\r\n']
        assert raw.command(b"LISTSCRIPTS\r\n")[-1].startswith(b"NO")
    finally:
        raw.close()
    listed = sieve_lmtpd.cli("sieve", "list", user, "--json").stdout
    assert '"name": "plus!"' in listed and '"name": "sync"' in listed
    assert sieve_lmtpd.cli("sieve", "show", user).stdout == "discard;\n"
    log = sieve_lmtpd.log()
    assert f"managesieve: putscript user={user} ip=127.0.0.1 name=sync bytes=6 result=ok" in log
    assert f"managesieve: setactive user={user} ip=127.0.0.1 name=plus! result=ok" in log
    metrics = urllib.request.urlopen(f"http://{sieve_lmtpd.settings['metrics']['listen']}/",
                                     timeout=10).read().decode()
    counted = re.search(r'^lmtpd_managesieve_changes_total\{command="putscript",'
                        r'outcome="ok"\} (\d+)', metrics, re.MULTILINE)
    assert counted is not None and float(counted.group(1)) >= 2


def run_sieve_connect(instance: Lmtpd, user: str, *args: str) -> subprocess.CompletedProcess:
    tool = require_tool("sieve-connect")
    read_end, write_end = os.pipe()
    os.write(write_end, PASSWORD.encode() + b"\n")
    os.close(write_end)
    try:
        return subprocess.run(
            [tool, "--server", "127.0.0.1", "--port", str(sieve_port(instance)), "--user", user,
             "--passwordfd", str(read_end), "--notlsverify", *args],
            pass_fds=(read_end,), capture_output=True, text=True, timeout=60)
    finally:
        os.close(read_end)


def test_sieve_connect_does_everything_it_can(sieve_lmtpd: Lmtpd, tmp_path: Path) -> None:
    """sieve-connect has no rename command; everything else it does goes through STARTTLS."""
    user = "connect@example.org"
    add_mailboxes(sieve_lmtpd, user)
    script = tmp_path / "filing.sieve"
    script.write_text(FILE_INTO.format(folder="Connected"))
    broken = tmp_path / "broken.sieve"
    broken.write_text("fileinto \"x\";\n")
    checked = run_sieve_connect(sieve_lmtpd, user, "--checkscript", "--localsieve",
                                str(script))
    assert checked.returncode == 0, checked.stderr
    refused = run_sieve_connect(sieve_lmtpd, user, "--checkscript", "--localsieve",
                                str(broken))
    assert refused.returncode != 0 and "line 1, column 1" in refused.stderr
    fetched = tmp_path / "fetched.sieve"
    commands = tmp_path / "commands"
    commands.write_text(f"put {script} filing\nput {script} spare\nactivate filing\n"
                        f"get filing {fetched}\ndelete spare\nlist\n")
    session = run_sieve_connect(sieve_lmtpd, user, "--exec", str(commands))
    assert session.returncode == 0, session.stderr
    assert fetched.read_text() == script.read_text()
    assert session.stdout.split() == ['"filing"', "ACTIVE"]  # `list`, after `delete spare`
    listed = run_sieve_connect(sieve_lmtpd, user, "--list")
    assert listed.returncode == 0 and listed.stdout.split() == ['"filing"', "ACTIVE"]
    assert "tls=yes" in sieve_lmtpd.log()
    lmtp_send(sieve_lmtpd.socket_path, "x@example.net", [user], MESSAGE)
    assert len(deliveries(sieve_lmtpd, user, "Connected")) == 1
    deleted = run_sieve_connect(sieve_lmtpd, user, "--deactivate")
    assert deleted.returncode == 0, deleted.stderr
    gone = run_sieve_connect(sieve_lmtpd, user, "--delete", "--remotesieve", "filing")
    assert gone.returncode == 0, gone.stderr
    assert sieve_lmtpd.cli("sieve", "list", user, "--json").stdout.strip() == "[]"
