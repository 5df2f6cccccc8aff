"""`lmtpd sieve replay` and `lmtpd sieve test`: what a script would do, with nothing changed.

The replay's verdicts are checked against the real thing: the same messages delivered over
LMTP to a second mailbox that has the candidate script active."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from lmtpd import config
from lmtpd.replay import Envelope, split_trace
from lmtpd.store.index import Index
from lmtpd.store.mailboxes import Store
from tests.conftest import LMTPD, Lmtpd, lmtp_send

ALICE, BOB = "alice@example.org", "bob@example.org"
CURRENT = 'require "fileinto";\nif exists "List-Id" { fileinto "Lists"; }\n'
CANDIDATE = """require ["fileinto", "envelope", "subaddress", "reject"];
if header :contains "Subject" "junk" { fileinto "Junk"; stop; }
if address :domain :is "from" "spam.example" { reject "no thanks"; stop; }
if envelope :detail "to" "lists" { fileinto "Lists/detail"; stop; }
if envelope :is "from" "boss@example.net" { keep; fileinto "Boss"; stop; }
if header :contains "List-Id" "python" { fileinto "Lists"; stop; }
if size :over 3K { discard; stop; }
"""


def corpus(count: int) -> list[tuple[str, str, bytes]]:
    """(sender, local part of the recipient, message): lists, junk, a boss, big ones..."""
    messages = []
    for n in range(count):
        sender = ["friend@example.net", "boss@example.net", "news@spam.example",
                  "list@python.org", ""][n % 5]
        headers = [f"From: {sender or 'mailer-daemon@example.net'}", f"To: {ALICE}",
                   f"Message-ID: <m{n}@replay.test>",
                   f"Subject: {'junk offer' if n % 11 == 0 else 'hello'} {n}"]
        if n % 3 == 0:
            headers.append(f"List-Id: <{'python' if n % 2 else 'rust'}.lists.example>")
        body = "line of text\n" * (300 if n % 13 == 0 else 3)
        detail = "+lists" if n % 17 == 0 else ""
        messages.append((sender, detail, ("\n".join(headers) + "\n\n" + body).encode()))
    return messages


def deliver_all(lmtpd: Lmtpd, local: str, messages: list[tuple[str, str, bytes]]) -> None:
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        for sender, detail, message in messages:
            replies = lmtp_send(lmtpd.socket_path, sender, [f"{local}{detail}@example.org"],
                                message, client=client)
            assert all(code in (250, 550) for code, _ in replies.values()), replies
    finally:
        client.quit()


def set_script(lmtpd: Lmtpd, address: str, text: str) -> None:
    path = lmtpd.root / f"{address}.sieve"
    path.write_text(text)
    lmtpd.cli("sieve", "set", address, str(path))


def folders_by_message_id(lmtpd: Lmtpd, address: str) -> dict[str, list[str]]:
    index = Index(lmtpd.index_path)
    try:
        mailbox = index.require_mailbox(address)
        found: dict[str, list[str]] = {}
        for row in index.messages(mailbox.id):
            found.setdefault(row.message_id.strip("<>"), []).append(row.folder)
        return found
    finally:
        index.close()


def tree_digest(root: Path) -> str:
    """Every file under the store, names and contents (the index included)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def index_digest(path: Path) -> str:
    index = Index(path)
    try:
        return hashlib.sha256("\n".join(index.conn.iterdump()).encode()).hexdigest()
    finally:
        index.close()


@pytest.fixture
def replay_lmtpd(lmtpd_factory) -> Lmtpd:
    lmtpd = lmtpd_factory({"store": {"fsync": False}, "lmtp": {"duplicate_window": "0"}})
    store = Store(config.load(lmtpd.config_path))
    try:
        for address in (ALICE, BOB):
            store.add_mailbox(address, "secret")
    finally:
        store.close()
    return lmtpd


def test_replay_of_1000_messages_changes_nothing_and_agrees_with_redelivery(
        replay_lmtpd: Lmtpd) -> None:
    lmtpd = replay_lmtpd
    messages = corpus(1000)
    set_script(lmtpd, ALICE, CURRENT)
    lmtpd.start()
    deliver_all(lmtpd, "alice", messages)
    lmtpd.stop()
    candidate = lmtpd.root / "candidate.sieve"
    candidate.write_text(CANDIDATE)
    before = tree_digest(lmtpd.store_root), index_digest(lmtpd.index_path)

    started = time.monotonic()
    result = lmtpd.cli("sieve", "replay", ALICE, str(candidate), "--last", "1000", "--json")
    seconds = time.monotonic() - started
    print(f"replay of 1000 messages: {seconds:.2f} s")

    assert (tree_digest(lmtpd.store_root), index_digest(lmtpd.index_path)) == before
    report = json.loads(result.stdout)
    assert len(report["messages"]) == 1000
    now = folders_by_message_id(lmtpd, ALICE)
    # Newest first, and each one where it is now.
    ids = [m["message_id"] for m in report["messages"]]
    assert ids[0] == "m999@replay.test" and ids[-1] == "m0@replay.test"
    assert all(now[m["message_id"]] == [m["now"]["folder"]] for m in report["messages"])

    # The real thing: the same messages to bob, whose active script is the candidate.
    set_script(lmtpd, BOB, CANDIDATE)
    lmtpd.start()
    deliver_all(lmtpd, "bob", messages)
    redelivered = folders_by_message_id(lmtpd, BOB)
    differently = {mid for mid, folders in now.items() if redelivered.get(mid, []) != folders}
    claimed = {m["message_id"] for m in report["messages"] if _changed(m)}
    assert claimed == differently
    assert report["changed"] == len(differently)
    # The corpus exercises every kind of verdict.
    kinds = {a["type"] for m in report["messages"] for a in m["would"]}
    assert kinds == {"store", "discard", "reject"}
    assert 100 < report["changed"] < 900


def _changed(message: dict) -> bool:
    would = message["would"]
    return not (len(would) == 1 and would[0]["type"] == "store"
                and would[0]["folder"] == message["now"]["folder"])


def test_replay_text_output_last_and_a_broken_candidate(replay_lmtpd: Lmtpd) -> None:
    lmtpd = replay_lmtpd
    lmtpd.start()
    deliver_all(lmtpd, "alice", corpus(12))
    candidate = lmtpd.root / "candidate.sieve"
    candidate.write_text('require "fileinto";\nif header :contains "Subject" "junk" '
                         '{ fileinto "Junk"; }\n')
    replayed = lmtpd.cli("sieve", "replay", ALICE, str(candidate), "--last", "5")
    assert replayed.stderr == ""  # no progress bar when stderr is not a terminal
    out = replayed.stdout.splitlines()
    # m11 is the only junk among the newest five (m7..m11).
    assert out[-1] == "1 of 5 messages would be filed differently"
    assert len(out) == 2 and "INBOX -> store into Junk" in out[0] and "junk offer 11" in out[0]
    report = json.loads(lmtpd.cli("sieve", "replay", ALICE, str(candidate), "--json").stdout)
    assert len(report["messages"]) == 12 and report["changed"] == 2
    candidate.write_text("fileinto \"x\";\n")
    broken = lmtpd.cli("sieve", "replay", ALICE, str(candidate), check=False)
    assert broken.returncode == 1 and "line 1, column 1" in broken.stderr


def test_replay_shows_progress_on_a_terminal(replay_lmtpd: Lmtpd) -> None:
    lmtpd = replay_lmtpd
    lmtpd.start()
    deliver_all(lmtpd, "alice", corpus(20))
    candidate = lmtpd.root / "candidate.sieve"
    candidate.write_text("keep;\n")
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [LMTPD, "--config", str(lmtpd.config_path), "sieve", "replay", ALICE,
             str(candidate)], stdout=subprocess.PIPE, stderr=terminal, timeout=60)
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    assert result.returncode == 0
    assert b"replaying" in shown and b"100%" in shown
    assert result.stdout.decode().splitlines() == ["0 of 20 messages would be filed differently"]


def test_sieve_test_resolves_the_address_as_delivery_does(replay_lmtpd: Lmtpd) -> None:
    lmtpd = replay_lmtpd
    lmtpd.cli("alias", "add", "team@example.org", ALICE)
    lmtpd.cli("alias", "add", "all@example.org", ALICE, BOB)
    message = lmtpd.root / "message.eml"
    message.write_bytes(b"From: x@example.net\nSubject: hi\n\nhello\n")
    script = lmtpd.root / "detail.sieve"
    script.write_text('require ["fileinto", "envelope", "subaddress"];\n'
                      'if envelope :detail "to" "lists" { fileinto "Lists"; }\n')
    set_script(lmtpd, ALICE, script.read_text())

    def actions(address: str) -> list[dict]:
        out = lmtpd.cli("sieve", "test", address, str(message), "--json").stdout
        return json.loads(out)["actions"]

    assert actions("alice+lists@example.org") == [
        {"type": "store", "folder": "Lists", "flags": []}]
    assert actions("Alice@Example.org") == [{"type": "store", "folder": "INBOX", "flags": []}]
    assert actions("team@example.org") == [{"type": "store", "folder": "INBOX", "flags": []}]
    several = lmtpd.cli("sieve", "test", "all@example.org", str(message), check=False)
    assert several.returncode == 1 and "2 mailboxes" in several.stderr
    unknown = lmtpd.cli("sieve", "test", "nobody@example.org", str(message), check=False)
    assert unknown.returncode == 1 and "no such mailbox" in unknown.stderr


def test_the_envelope_comes_from_the_lines_delivery_put_on_top() -> None:
    stored = (b"Return-Path: <bob@example.net>\nDelivered-To: alice+lists@example.org\n"
              b"X-Original-To: lists@example.org\n"
              b"Received: from mx by mail.example.org (lmtpd) with LMTP id 1A2B for "
              b"<alice+lists@example.org>; Mon, 30 Nov 2026 10:00:00 +0000\n"
              b"Received: from elsewhere by mx; Mon, 30 Nov 2026 09:59:00 +0000\n"
              b"Delivered-To: earlier@example.net\nSubject: hi\n\nbody\n")
    envelope, message = split_trace(stored, ALICE)
    assert envelope == Envelope("bob@example.net", "alice+lists@example.org")
    assert message == (b"X-Original-To: lists@example.org\n"
                       b"Received: from elsewhere by mx; Mon, 30 Nov 2026 09:59:00 +0000\n"
                       b"Delivered-To: earlier@example.net\nSubject: hi\n\nbody\n")
    # A null sender, and a file that did not come through delivery.
    assert split_trace(b"Return-Path: <>\nDelivered-To: a@x\n\nb\n", ALICE)[0] == Envelope(
        "", "a@x")
    plain = b"Subject: imported\n\nbody\n"
    assert split_trace(plain, ALICE) == (Envelope("", ALICE), plain)
