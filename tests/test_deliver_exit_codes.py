"""`lmtpd deliver` never bounces mail by accident: while another process holds the index's
lock it exits 75 (EX_TEMPFAIL, the MTA retries) within 15 s, with no traceback and nothing
stored; once the lock is gone the message is stored once. Postfix's pipe(8) and local(8)
treat any other failure status as permanent."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LMTPD, Lmtpd
from tests.pop3.conftest import add_mailboxes, message_files

ADDRESS = "alice@example.org"
MESSAGE = b"Subject: while locked\nMessage-ID: <locked@remote.example>\n\nbody\n"

# A second process with a write lock on the index: a transaction left open, or, in
# EXCLUSIVE locking mode, the lock a committed write keeps (no other process can even read).
HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
if sys.argv[2] == "exclusive":
    db.execute("COMMIT")
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def store(lmtpd_factory: Any) -> Lmtpd:
    instance = lmtpd_factory()
    add_mailboxes(instance, ADDRESS, "bob@example.org")
    return instance


@contextmanager
def lock_held(instance: Lmtpd, mode: str) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(instance.index_path), mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield holder
    finally:
        release(holder)


def release(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def deliver(instance: Lmtpd, *recipients: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [LMTPD, "--config", str(instance.config_path), "deliver", "-f", "s@remote.example",
         *recipients], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write(MESSAGE)
    process.stdin.close()
    return process


def stored_rows(instance: Lmtpd) -> int:
    with closing(sqlite3.connect(instance.index_path)) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


@pytest.mark.parametrize("mode", ["transaction", "exclusive"])
def test_a_locked_index_gives_75_in_time_and_the_retry_stores_once(store: Lmtpd,
                                                                   mode: str) -> None:
    with lock_held(store, mode):
        started = time.monotonic()
        process = deliver(store, ADDRESS, "bob@example.org")
        status = process.wait(60)
        elapsed = time.monotonic() - started
        assert process.stderr is not None
        errors = process.stderr.read().decode()
        assert status == 75, errors
        assert elapsed < 15, elapsed
        assert "Traceback" not in errors, errors
        assert message_files(store, ADDRESS) == []
        assert message_files(store, "bob@example.org") == []
    # The MTA retries once the lock is gone.
    retry = deliver(store, ADDRESS, "bob@example.org")
    assert retry.wait(60) == 0
    assert len(message_files(store, ADDRESS)) == 1
    assert len(message_files(store, "bob@example.org")) == 1
    assert stored_rows(store) == 2


@pytest.mark.parametrize("mode", ["transaction", "exclusive"])
def test_a_lock_that_goes_away_while_deliver_waits(store: Lmtpd, mode: str) -> None:
    with lock_held(store, mode) as holder:
        process = deliver(store, ADDRESS)
        time.sleep(2)
        release(holder)
        assert process.wait(60) == 0
    assert len(message_files(store, ADDRESS)) == 1
    assert stored_rows(store) == 1


def test_unknown_and_disabled_recipients_give_67(store: Lmtpd) -> None:
    store.add_mailbox("off@example.org")
    store.cli("mailbox", "disable", "off@example.org")
    for rcpt in ("nobody@example.org", "off@example.org"):
        process = deliver(store, rcpt)
        assert process.wait(60) == 67, rcpt


def test_a_full_disk_gives_75(store: Lmtpd, tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    faults.write_text("write ENOSPC\n")
    result = subprocess.run(
        [LMTPD, "--config", str(store.config_path), "deliver", ADDRESS], input=MESSAGE,
        capture_output=True, timeout=60,
        env={**os.environ, "LMTPD_FAULTS_FILE": str(faults)})
    assert result.returncode == 75, result.stderr
    assert message_files(store, ADDRESS) == []


def test_an_unreadable_store_gives_75_not_a_traceback(store: Lmtpd) -> None:
    store.index_path.write_bytes(b"this is not a database, at least not any more" * 100)
    result = subprocess.run(
        [LMTPD, "--config", str(store.config_path), "deliver", ADDRESS], input=MESSAGE,
        capture_output=True, timeout=60)
    assert result.returncode == 75, result.stderr
    assert b"Traceback" not in result.stderr


def test_cr_in_the_sender_is_refused(store: Lmtpd) -> None:
    result = subprocess.run(
        [LMTPD, "--config", str(store.config_path), "deliver", "-f",
         "a\rX-Injected: yes@b.example", ADDRESS], input=MESSAGE, capture_output=True,
        timeout=60)
    assert result.returncode == 64, result.stderr
    assert message_files(store, ADDRESS) == []
