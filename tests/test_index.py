"""The index on its own: schema steps, usage counters kept with the rows, expiring memories."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from lmtpd.store.index import SCHEMA_VERSION, Index, MessageMeta, NotRecorded, schema
from lmtpd.store.maildir import StoredFile


def stored(n: int, size: int = 100) -> StoredFile:
    return StoredFile("INBOX", "new", f"{n}.M1P1Q{n}.host", f"{n}.M1P1Q{n}.host", size,
                      size + 2, time.time(), "")


def test_a_quota_check_reads_a_counter_not_the_mailbox(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 0)
    index.apply_sync(mailbox, [(stored(n), MessageMeta()) for n in range(1000)], [], [])
    statements: list[str] = []
    index.conn.set_trace_callback(statements.append)
    assert index.record_delivery(mailbox, stored(5000), MessageMeta(), quota=10**9) > 0
    index.conn.set_trace_callback(None)
    assert not [s for s in statements if "sum(" in s.lower() or "count(" in s.lower()]
    assert index.usage(mailbox) == (1001, 100_100)
    assert index.record_delivery(mailbox, stored(5001, 900), MessageMeta(),
                                 quota=100_900) is NotRecorded.OVER_QUOTA
    rows = index.messages(mailbox)
    index.delete_messages([rows[0].id, rows[1].id])
    assert index.usage(mailbox) == (999, 99_900)
    index.close()


def test_reindex_puts_a_wrong_counter_right(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 0)
    index.apply_sync(mailbox, [(stored(n), MessageMeta()) for n in range(3)], [], [])
    with index.transaction():
        index.conn.execute("UPDATE usage SET bytes = 7")
    index.reconcile_usage(mailbox)
    assert index.usage(mailbox) == (3, 300)
    index.close()


def test_an_index_of_the_first_release_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    import sqlite_utils

    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    schema._first_schema(db)
    db.conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.conn.execute("INSERT INTO mailboxes (address, domain, password_hash, quota, enabled,"
                    " created) VALUES ('a@example.org', 'example.org', '', 0, 1, 0)")
    db.conn.execute("INSERT INTO messages (mailbox_id, folder, subdir, filename, uidl, size,"
                    " crlf_size) VALUES (1, 'INBOX', 'new', 'f', 'f', 42, 44)")
    db.conn.execute("INSERT INTO duplicates VALUES (1, '<m@x>', ?)", (time.time(),))
    db.conn.close()
    index = Index(path)
    assert schema.version(index.conn) == SCHEMA_VERSION
    assert index.usage(1) == (1, 42)
    assert index.is_duplicate(1, "<m@x>")  # kept for a while after the upgrade
    assert "domains" not in index.db.table_names()
    index.close()


def test_trace_rows_written_before_x_original_to_was_kept_read_as_none(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    import sqlite_utils

    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    schema._first_schema(db)
    schema.STEPS[2](db.conn)
    db.conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    db.conn.execute("INSERT INTO deliveries (at, message_id, recipient, files, actions)"
                    " VALUES (1, '<old@x>', 'a@example.org', '[]', '[]')")
    db.conn.close()
    index = Index(path)
    [old] = index.trace("<old@x>")
    assert old["original_to"] == ""
    index.record_outcomes("ID", "<new@x>", "s@x", [{
        "recipient": "a@example.org", "outcome": "delivered", "stage": "data", "code": 250,
        "status": "2.0.0", "reply": "ok", "mailboxes": "", "files": "[]", "actions": "[]",
        "seconds": 0.0, "original_to": "info@example.org"}])
    [new] = index.trace("new@x")
    assert new["original_to"] == "info@example.org"
    index.close()


def test_memories_are_forgotten_once_past_their_window(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    mailbox = index.add_mailbox("a@example.org", "example.org", "", 0)
    index.remember_duplicate(mailbox, "short", 0.2)
    index.remember_duplicate(mailbox, "long", 3600)
    index.remember_vacation(mailbox, "", "s@x", 0.2)
    assert index.is_duplicate(mailbox, "short") and index.vacation_recently_sent(mailbox, "",
                                                                                 "s@x")
    time.sleep(0.3)
    assert not index.is_duplicate(mailbox, "short")
    assert index.prune_memories(trace_retention=0, throttle_window=86400) == 2
    assert index.is_duplicate(mailbox, "long")
    index.close()
