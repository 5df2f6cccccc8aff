"""Quota warning marks in the index: one warning per rise past a level, forgotten by the
schema's trigger as soon as usage drops below the level, whatever lowered it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlite_utils

from lmtpd.store.index import Index, MessageMeta, schema
from lmtpd.store.index.quota import level_of
from lmtpd.store.maildir import StoredFile

LEVELS = [level_of(0.5), level_of(0.8)]


def stored(n: int, size: int) -> StoredFile:
    return StoredFile("INBOX", "new", f"{n}.M1P1Q{n}.host", f"{n}.M1P1Q{n}.host", size,
                      size + 2, time.time(), "")


def test_each_level_is_due_once_until_usage_drops_below_it(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 1000)
    assert index.quota_warning_due(mailbox, 1000, LEVELS) is None
    index.record_delivery(mailbox, stored(1, 500), MessageMeta())
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.5)  # at the level
    assert index.quota_warning_due(mailbox, 1000, LEVELS) is None
    index.record_delivery(mailbox, stored(2, 400), MessageMeta())
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.8)
    assert index.quota_warning_due(mailbox, 1000, LEVELS) is None

    # A deletion down to 0.5 forgets the 0.8 mark only; rising past 0.8 again warns again.
    [_, second] = index.messages(mailbox)
    index.delete_messages([second.id])
    marks = {row[0] for row in index.conn.execute("SELECT level FROM quota_warnings")}
    assert marks == {level_of(0.5)}
    index.record_delivery(mailbox, stored(3, 350), MessageMeta())
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.8)
    # Down to 0.35 forgets both.
    index.delete_messages([m.id for m in index.messages(mailbox) if m.size != 350])
    assert index.conn.execute("SELECT count(*) FROM quota_warnings").fetchone()[0] == 0
    index.close()


def test_a_jump_past_two_levels_is_one_warning_for_the_higher(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 1000)
    index.record_delivery(mailbox, stored(1, 900), MessageMeta())
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.8)
    assert index.quota_warning_due(mailbox, 1000, LEVELS) is None  # 0.5 marked too


def test_a_raised_quota_forgets_marks_above_usage(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 1000)
    index.record_delivery(mailbox, stored(1, 850), MessageMeta())
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.8)
    assert index.quota_warning_due(mailbox, 2000, LEVELS) is None  # 42%: below both
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.8)


def test_forgetting_a_mark_lets_it_come_again(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 1000)
    index.record_delivery(mailbox, stored(1, 600), MessageMeta())
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.5)
    index.forget_quota_warning(mailbox, level_of(0.5))
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.5)


def test_a_mailbox_with_marks_can_be_deleted(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 1000)
    index.record_delivery(mailbox, stored(1, 600), MessageMeta())
    assert index.quota_warning_due(mailbox, 1000, LEVELS) == level_of(0.5)
    index.delete_mailbox("a@example.org")
    assert index.conn.execute("SELECT count(*) FROM quota_warnings").fetchone()[0] == 0


def test_an_index_before_the_marks_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    schema._first_schema(db)
    schema._usage_counters_and_expiring_memories(db.conn)
    db.conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    db.conn.execute("INSERT INTO mailboxes (address, domain, password_hash, quota, enabled,"
                    " created) VALUES ('a@example.org', 'example.org', '', 100, 1, 0)")
    db.conn.execute("INSERT INTO messages (mailbox_id, folder, subdir, filename, uidl, size,"
                    " crlf_size) VALUES (1, 'INBOX', 'new', 'f', 'f', 90, 92)")
    db.conn.close()
    index = Index(path)
    assert schema.version(index.conn) == schema.SCHEMA_VERSION
    assert index.quota_warning_due(1, 100, LEVELS) == level_of(0.8)
    index.close()
