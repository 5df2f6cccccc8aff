"""Sieve through the LMTP socket and the `lmtpd sieve` commands, with a real SMTP listener
(aiosmtpd) on loopback receiving redirects and vacation replies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import Lmtpd, free_port, lmtp_send


class Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_sink():
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    yield collector, port
    controller.stop()


@pytest.fixture
def sieve_lmtpd(lmtpd_factory, smtp_sink) -> tuple[Lmtpd, Collector]:
    collector, port = smtp_sink
    lmtpd = lmtpd_factory({"sieve": {"submission": f"smtp://127.0.0.1:{port}"}})
    for name in ("alice", "bob", "carol"):
        lmtpd.add_mailbox(f"{name}@example.org")
    lmtpd.start()
    return lmtpd, collector


def set_script(lmtpd: Lmtpd, address: str, text: str) -> None:
    path = lmtpd.root / f"{address}.sieve"
    path.write_text(text)
    lmtpd.cli("sieve", "set", address, str(path))


def test_three_recipients_reject_fileinto_and_plain_keep(sieve_lmtpd) -> None:
    lmtpd, _ = sieve_lmtpd
    set_script(lmtpd, "alice@example.org",
               'require "reject";\nreject "I do not want mail about python";\n')
    set_script(lmtpd, "bob@example.org",
               'require ["fileinto", "imap4flags"];\n'
               'if header :contains "List-Id" "python.org" {\n'
               '  fileinto :flags "\\\\Seen" "Lists/python";\n}\n')
    message = (b"From: list@python.org\r\nTo: all@example.org\r\n"
               b"List-Id: Python list <python-list.python.org>\r\n"
               b"Subject: PEP 999\r\nMessage-ID: <pep999@python.org>\r\n\r\nbody\r\n")
    rcpts = ["alice@example.org", "bob@example.org", "carol@example.org"]
    result = lmtp_send(lmtpd.socket_path, "list@python.org", rcpts, message)
    assert result["alice@example.org"] == (550, "5.7.1 I do not want mail about python")
    assert result["bob@example.org"][0] == 250
    assert result["carol@example.org"][0] == 250
    folder = lmtpd.maildir("bob@example.org") / ".Lists.python"
    [filed] = list((folder / "cur").iterdir())
    assert filed.name.endswith(":2,S")
    assert (folder / "maildirfolder").exists()
    assert list((lmtpd.maildir("bob@example.org") / "new").iterdir()) == []
    assert len(list((lmtpd.maildir("carol@example.org") / "new").iterdir())) == 1
    assert list((lmtpd.maildir("alice@example.org") / "new").iterdir()) == []
    shown = json.loads(lmtpd.cli("mailbox", "show", "bob@example.org", "--json").stdout)
    assert shown["folders"] == ["INBOX", "Lists/python"] and shown["messages"] == 1
    assert lmtpd.cli("verify").returncode == 0


VACATION = """require "vacation";
vacation :days 3 :subject "Away" "I am away until Monday.";
"""


def _mail(sender: str, to: str = "alice@example.org", extra: str = "", n: int = 0) -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: hello {n}\r\n"
            f"Message-ID: <v{n}.{time.time_ns()}@remote.example>\r\n{extra}\r\nhi\r\n").encode()


def test_vacation_once_per_sender_not_to_lists_or_auto_submitted(sieve_lmtpd) -> None:
    lmtpd, sink = sieve_lmtpd
    set_script(lmtpd, "alice@example.org", VACATION)
    send = lmtpd.socket_path
    assert lmtp_send(send, "bob@remote.example", ["alice@example.org"],
                     _mail("bob@remote.example", n=1))["alice@example.org"][0] == 250
    assert lmtp_send(send, "bob@remote.example", ["alice@example.org"],
                     _mail("bob@remote.example", n=2))["alice@example.org"][0] == 250
    lmtp_send(send, "news@lists.example", ["alice@example.org"],
              _mail("news@lists.example", extra="List-Id: <news.lists.example>\r\n", n=3))
    lmtp_send(send, "robot@remote.example", ["alice@example.org"],
              _mail("robot@remote.example", extra="Auto-Submitted: auto-generated\r\n", n=4))
    lmtp_send(send, "cc@remote.example", ["alice@example.org"],
              _mail("cc@remote.example", to="someone-else@example.net", n=5))
    lmtp_send(send, "dave@remote.example", ["alice@example.org"], _mail("dave@remote.example", n=6))
    replies = [(m[0], m[1]) for m in sink.messages]
    # aiosmtpd shows the null sender (MAIL FROM:<>) as "<>".
    assert replies == [("<>", ["bob@remote.example"]), ("<>", ["dave@remote.example"])]
    reply = sink.messages[0][2]
    assert b"Subject: Away" in reply
    assert b"Auto-Submitted: auto-replied" in reply
    assert b"In-Reply-To: <v1." in reply
    # Every message was still stored.
    assert len(list((lmtpd.maildir("alice@example.org") / "new").iterdir())) == 6


def test_redirect_goes_through_submission_with_loop_marker(sieve_lmtpd) -> None:
    lmtpd, sink = sieve_lmtpd
    set_script(lmtpd, "bob@example.org", 'redirect "bob@elsewhere.example";\n')
    message = _mail("x@remote.example", to="bob@example.org", n=7)
    result = lmtp_send(lmtpd.socket_path, "x@remote.example", ["bob@example.org"], message)
    assert result["bob@example.org"][0] == 250
    [(sender, rcpts, data)] = sink.messages
    assert (sender, rcpts) == ("x@remote.example", ["bob@elsewhere.example"])
    assert data.startswith(b"X-Lmtpd-Redirected: <bob@elsewhere.example>")
    # Redirect cancels the implicit keep: nothing stored.
    assert list((lmtpd.maildir("bob@example.org") / "new").iterdir()) == []


def test_redirect_without_submission_is_a_temporary_failure(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory()
    lmtpd.add_mailbox("bob@example.org")
    lmtpd.add_mailbox("carol@example.org")
    lmtpd.start()
    set_script(lmtpd, "bob@example.org", 'redirect "bob@elsewhere.example";\n')
    result = lmtp_send(lmtpd.socket_path, "x@remote.example",
                       ["bob@example.org", "carol@example.org"], _mail("x@remote.example", n=8))
    assert result["bob@example.org"][0] == 451
    assert result["bob@example.org"][1].startswith("4.3.0")
    assert result["carol@example.org"][0] == 250


def test_sieve_set_syntax_error_names_line_and_column_and_keeps_old(sieve_lmtpd) -> None:
    lmtpd, _ = sieve_lmtpd
    good = 'require "fileinto";\nfileinto "Good";\n'
    set_script(lmtpd, "alice@example.org", good)
    bad = lmtpd.root / "bad.sieve"
    bad.write_text('require "fileinto";\nif header :contains "Subject" "x" {\n  fileinto "A"\n}\n')
    result = lmtpd.cli("sieve", "set", "alice@example.org", str(bad), check=False)
    assert result.returncode == 1
    assert "line 4, column 1" in result.stderr
    assert lmtpd.cli("sieve", "show", "alice@example.org").stdout == good
    lmtp_send(lmtpd.socket_path, "x@remote.example", ["alice@example.org"],
              _mail("x@remote.example", n=9))
    assert len(list((lmtpd.maildir("alice@example.org") / ".Good" / "new").iterdir())) == 1


def test_sieve_test_dry_run_json(sieve_lmtpd, tmp_path: Path) -> None:
    lmtpd, _ = sieve_lmtpd
    set_script(lmtpd, "bob@example.org",
               'require ["fileinto", "imap4flags", "envelope", "subaddress"];\n'
               'if envelope :detail "to" "lists" { fileinto :flags "\\\\Flagged" "Lists"; }\n'
               'elsif header :is "Subject" "junk" { discard; }\n')
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@remote.example\nSubject: hi\n\nbody\n")
    out = lmtpd.cli("sieve", "test", "bob@example.org", str(message), "--sender",
                    "a@remote.example", "--recipient", "bob+lists@example.org", "--json")
    assert json.loads(out.stdout) == {
        "actions": [{"type": "store", "folder": "Lists", "flags": ["\\Flagged"]}]}
    plain = lmtpd.cli("sieve", "test", "bob@example.org", str(message), "--json")
    assert json.loads(plain.stdout) == {
        "actions": [{"type": "store", "folder": "INBOX", "flags": []}]}
    message.write_bytes(b"From: a@remote.example\nSubject: junk\n\nbody\n")
    junk = lmtpd.cli("sieve", "test", "bob@example.org", str(message), "--json")
    assert json.loads(junk.stdout) == {"actions": [{"type": "discard"}]}
    # A dry run stores nothing.
    assert list((lmtpd.maildir("bob@example.org") / "new").iterdir()) == []
    lmtpd.cli("sieve", "delete", "bob@example.org")
    assert lmtpd.cli("sieve", "show", "bob@example.org", check=False).returncode == 1


def test_the_dry_run_reports_where_delivery_stores_an_unsafe_folder(
        sieve_lmtpd, tmp_path: Path) -> None:
    lmtpd, _ = sieve_lmtpd
    set_script(lmtpd, "bob@example.org", 'require "fileinto";\nfileinto "../../etc";\n')
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@remote.example\nSubject: hi\n\nbody\n")
    dry = json.loads(lmtpd.cli("sieve", "test", "bob@example.org", str(message),
                               "--json").stdout)
    assert dry["actions"] == [{"type": "store", "folder": "INBOX", "flags": []}]
    assert "not a valid folder name" in " ".join(dry["errors"])
    result = lmtp_send(lmtpd.socket_path, "a@remote.example", ["bob@example.org"],
                       message.read_bytes())
    assert result["bob@example.org"][0] == 250
    assert len(list((lmtpd.maildir("bob@example.org") / "new").iterdir())) == 1
    assert not (lmtpd.store_root / "etc").exists()


def test_global_before_script_runs_first(lmtpd_factory, tmp_path: Path) -> None:
    before = tmp_path / "before.sieve"
    before.write_text('require "fileinto";\n'
                      'if header :contains "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }\n')
    lmtpd = lmtpd_factory({"sieve": {"before": str(before)}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    set_script(lmtpd, "alice@example.org", 'require "fileinto";\nfileinto "Personal";\n')
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
              b"X-Spam-Flag: YES\r\nSubject: buy\r\n\r\nspam\r\n")
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
              b"Subject: hello\r\n\r\nham\r\n")
    base = lmtpd.maildir("alice@example.org")
    assert len(list((base / ".Junk" / "new").iterdir())) == 1
    assert len(list((base / ".Personal" / "new").iterdir())) == 1
    assert list((base / "new").iterdir()) == []


@pytest.mark.parametrize("script", [
    "if true {" * 1000 + "keep;" + "}" * 1000,
    'require "variables";\nset "x" "' + "a" * (1024 * 1024) + '";\n',
    'require "fileinto";\n' + "".join(f'fileinto "F{i}";\n' for i in range(10_000)),
    'require "variables";\nset "a" "aaaaaaaaaaaaaaaa";\n'
    + "".join('set "a" "${a}${a}";\n' for _ in range(40)),
])
def test_hostile_scripts_are_refused_or_contained(sieve_lmtpd, script: str) -> None:
    lmtpd, _ = sieve_lmtpd
    path = lmtpd.root / "hostile.sieve"
    path.write_text(script)
    installed = lmtpd.cli("sieve", "set", "alice@example.org", str(path), check=False)
    started = time.monotonic()
    result = lmtp_send(lmtpd.socket_path, "s@remote.example",
                       ["alice@example.org", "carol@example.org"],
                       _mail("s@remote.example", n=10))
    assert time.monotonic() - started < 10
    assert result["carol@example.org"][0] == 250
    assert result["alice@example.org"][0] == 250
    base = lmtpd.maildir("alice@example.org")
    stored = list((base / "new").iterdir()) + list((base / "cur").iterdir())
    if installed.returncode == 0:
        # Contained at run time: the message is kept in INBOX and nothing else is created.
        assert len(stored) == 1
        assert sum(1 for p in base.iterdir() if p.name.startswith(".")) <= 32
    else:
        assert "line" in installed.stderr
        assert len(stored) == 1


def test_include_global_reads_sieve_global_dir_and_sees_changes(lmtpd_factory,
                                                                tmp_path: Path) -> None:
    global_dir = tmp_path / "global"
    global_dir.mkdir()
    spam = global_dir / "spam.sieve"
    spam.write_text('require "fileinto";\n'
                    'if header :contains "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }\n')
    lmtpd = lmtpd_factory({"sieve": {"global_dir": str(global_dir)}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    set_script(lmtpd, "alice@example.org",
               'require ["include", "fileinto"];\ninclude :global "spam";\nfileinto "Personal";\n')
    send = lambda headers: lmtp_send(  # noqa: E731
        lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
        headers + b"Subject: x\r\n\r\nbody\r\n")
    send(b"X-Spam-Flag: YES\r\n")
    send(b"")
    base = lmtpd.maildir("alice@example.org")
    assert len(list((base / ".Junk" / "new").iterdir())) == 1
    assert len(list((base / ".Personal" / "new").iterdir())) == 1
    # the next delivery runs the global script as it is now, not as it was compiled
    spam.write_text('require "fileinto";\nfileinto "Quarantine";\nstop;\n')
    send(b"X-Spam-Flag: YES\r\n")
    assert len(list((base / ".Quarantine" / "new").iterdir())) == 1


def test_sieve_set_accepts_a_missing_include_with_a_warning(sieve_lmtpd) -> None:
    lmtpd, _ = sieve_lmtpd
    path = lmtpd.root / "main.sieve"
    path.write_text('require "include";\ninclude "later";\n')
    result = lmtpd.cli("sieve", "set", "alice@example.org", str(path))
    assert "warning: line 2: included personal script 'later' does not exist" in result.stderr
    assert lmtpd.cli("sieve", "show", "alice@example.org").stdout == path.read_text()
    # a script that is wrong whatever is uploaded next is still refused
    path.write_text('require "include";\ninclude "a/b";\n')
    refused = lmtpd.cli("sieve", "set", "alice@example.org", str(path), check=False)
    assert refused.returncode == 1 and "line 2, column 1: include: invalid script name" in (
        refused.stderr)


def _index_dump(lmtpd: Lmtpd) -> list[str]:
    import sqlite3

    with sqlite3.connect(f"file:{lmtpd.index_path}?mode=ro", uri=True) as db:
        return list(db.iterdump())


def test_sieve_test_changes_nothing_even_with_memories_and_edits(sieve_lmtpd,
                                                                 tmp_path: Path) -> None:
    lmtpd, collector = sieve_lmtpd
    set_script(lmtpd, "bob@example.org",
               'require ["duplicate", "editheader", "vacation", "fileinto", "copy"];\n'
               'if duplicate { fileinto "Dup"; }\n'
               'addheader "X-Filtered" "yes";\n'
               'redirect :copy "carol@example.org";\n'
               'vacation "I am away.";\n')
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@remote.example\nTo: bob@example.org\nSubject: hi\n"
                        b"Message-ID: <dry-1@remote.example>\n\nbody\n")
    before = _index_dump(lmtpd)
    for _ in range(2):
        out = lmtpd.cli("sieve", "test", "bob@example.org", str(message), "--sender",
                        "a@remote.example", "--json")
        assert [a["type"] for a in json.loads(out.stdout)["actions"]] == [
            "redirect", "vacation", "store"]
    assert _index_dump(lmtpd) == before
    assert collector.messages == []
    base = lmtpd.maildir("bob@example.org")
    assert [p for p in base.rglob("*") if p.is_file() and p.parent.name in ("new", "cur")] == []


def test_editheader_changes_the_stored_copy(sieve_lmtpd) -> None:
    lmtpd, _ = sieve_lmtpd
    set_script(lmtpd, "bob@example.org",
               'require ["editheader", "fileinto"];\n'
               'addheader "X-Filtered" "by bob\'s script";\n'
               'deleteheader "X-Spam-Score";\n'
               'fileinto "Checked";\n')
    result = lmtp_send(lmtpd.socket_path, "a@remote.example", ["bob@example.org"],
                       b"X-Spam-Score: 9.9\r\nSubject: edit me\r\n\r\nbody\r\n")
    assert result["bob@example.org"][0] == 250
    [path] = (lmtpd.maildir("bob@example.org") / ".Checked" / "new").iterdir()
    stored = path.read_bytes()
    assert stored.startswith(b"Return-Path: <a@remote.example>\n")  # lmtpd's trace on top
    head = stored.split(b"\n\n", 1)[0]
    assert b"X-Filtered: by bob's script" in head
    assert b"X-Spam-Score" not in head
    assert stored.endswith(b"\n\nbody\n")
    assert lmtpd.cli("verify").returncode == 0  # sizes in the name match the edited file


def test_the_duplicate_test_remembers_what_delivery_stored(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory({"lmtp": {"duplicate_window": "0"}})
    lmtpd.add_mailbox("bob@example.org")
    lmtpd.start()
    set_script(lmtpd, "bob@example.org",
               'require ["duplicate", "fileinto"];\n'
               'if duplicate { fileinto "Seen-before"; }\n')
    for _ in range(2):
        result = lmtp_send(lmtpd.socket_path, "a@remote.example", ["bob@example.org"],
                           b"Message-ID: <twice@remote.example>\r\n\r\nbody\r\n")
        assert result["bob@example.org"][0] == 250
    mailbox = lmtpd.maildir("bob@example.org")
    assert len(list((mailbox / "new").iterdir())) == 1
    assert len(list((mailbox / ".Seen-before" / "new").iterdir())) == 1


def test_include_personal_reads_another_script_of_the_mailbox(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory()
    lmtpd.add_mailbox("bob@example.org")
    lmtpd.start()
    lists = lmtpd.root / "lists.sieve"
    lists.write_text('require "fileinto";\n'
                     'if header :contains "List-Id" "python" { fileinto "Python"; }\n')
    lmtpd.cli("sieve", "set", "bob@example.org", str(lists), "--name", "lists")
    main = lmtpd.root / "main.sieve"
    main.write_text('require "include";\ninclude :personal "lists";\n')
    lmtpd.cli("sieve", "set", "bob@example.org", str(main), "--name", "main")
    result = lmtp_send(lmtpd.socket_path, "a@remote.example", ["bob@example.org"],
                       b"List-Id: <python.lists.example>\r\n\r\nbody\r\n")
    assert result["bob@example.org"][0] == 250
    assert len(list((lmtpd.maildir("bob@example.org") / ".Python" / "new").iterdir())) == 1
