"""The index's tables, and the steps that bring an index made by any earlier release up to date.

A new index is made as the first release made it and then taken through every step, so the
steps are exercised on every fresh index, not only on old ones. Each step runs in the same
write transaction as the version bump: a crash leaves either the old or the new schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils


def _first_schema(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db["mailboxes"].create(
        {"id": int, "address": str, "domain": str, "password_hash": str,
         "quota": int, "enabled": int, "created": float},
        pk="id", not_null={"address", "domain", "quota", "enabled"},
        defaults={"quota": 0, "enabled": 1}, if_not_exists=True,
    )
    db["mailboxes"].create_index(["address"], unique=True, if_not_exists=True)
    db["aliases"].create(
        {"alias": str, "target": str}, pk=("alias", "target"), if_not_exists=True
    )
    db["sieve_scripts"].create(
        {"mailbox_id": int, "script": str, "updated": float},
        pk="mailbox_id", foreign_keys=[("mailbox_id", "mailboxes", "id")],
        if_not_exists=True,
    )
    db["vacation_memory"].create(
        {"mailbox_id": int, "handle": str, "sender": str, "sent": float},
        pk=("mailbox_id", "handle", "sender"),
        foreign_keys=[("mailbox_id", "mailboxes", "id")], if_not_exists=True,
    )
    db["duplicates"].create(
        {"mailbox_id": int, "message_id": str, "delivered": float},
        pk=("mailbox_id", "message_id"),
        foreign_keys=[("mailbox_id", "mailboxes", "id")], if_not_exists=True,
    )
    db["messages"].create(
        {"id": int, "mailbox_id": int, "folder": str, "subdir": str, "filename": str,
         "uidl": str, "size": int, "crlf_size": int, "received": float,
         "message_id": str, "from_addr": str, "subject": str, "flags": str},
        pk="id", foreign_keys=[("mailbox_id", "mailboxes", "id")],
        not_null={"mailbox_id", "folder", "subdir", "filename", "uidl", "size",
                  "crlf_size"},
        if_not_exists=True,
    )
    db["messages"].create_index(
        ["mailbox_id", "folder", "uidl"], unique=True, if_not_exists=True
    )
    # A log of recipient outcomes for `lmtpd trace` and `lmtpd stats`, pruned after
    # lmtp.trace_retention. Not a cache of anything: reindex leaves it alone.
    db["deliveries"].create(
        {"id": int, "at": float, "lmtp_id": str, "message_id": str, "sender": str,
         "recipient": str, "outcome": str, "stage": str, "code": int, "status": str,
         "reply": str, "mailboxes": str, "files": str, "actions": str,
         "seconds": float},
        pk="id", if_not_exists=True,
    )
    db["deliveries"].create_index(["message_id"], if_not_exists=True)
    db["deliveries"].create_index(["at"], if_not_exists=True)
    # POP3 failed-login counters, shared by every server process.
    db["login_throttle"].create(
        {"key": str, "failures": int, "last_failure": float, "locked_until": float},
        pk="key", if_not_exists=True,
    )


# Rows of memories written before they carried their own expiry are kept this long.
LEGACY_MEMORY_SECONDS = 7 * 86400


def _usage_counters_and_expiring_memories(conn: sqlite3.Connection) -> None:
    """Usage per mailbox kept as a counter by triggers, in the transaction that adds or
    removes a message row, so a quota check reads one row instead of summing a mailbox;
    memories get the moment they may be forgotten; the never-read `domains` table goes."""
    _execute_script(conn, f"""
        CREATE TABLE usage (
            mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id),
            messages INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO usage (mailbox_id, messages, bytes)
            SELECT mailbox_id, count(*), coalesce(sum(size), 0) FROM messages
            GROUP BY mailbox_id;
        CREATE TRIGGER usage_on_insert AFTER INSERT ON messages BEGIN
            INSERT INTO usage (mailbox_id, messages, bytes) VALUES (NEW.mailbox_id, 1, NEW.size)
            ON CONFLICT(mailbox_id) DO UPDATE
                SET messages = messages + 1, bytes = bytes + NEW.size;
        END;
        CREATE TRIGGER usage_on_delete AFTER DELETE ON messages BEGIN
            UPDATE usage SET messages = messages - 1, bytes = bytes - OLD.size
                WHERE mailbox_id = OLD.mailbox_id;
        END;
        CREATE TRIGGER usage_on_resize AFTER UPDATE OF size, mailbox_id ON messages BEGIN
            UPDATE usage SET messages = messages - 1, bytes = bytes - OLD.size
                WHERE mailbox_id = OLD.mailbox_id;
            INSERT INTO usage (mailbox_id, messages, bytes) VALUES (NEW.mailbox_id, 1, NEW.size)
            ON CONFLICT(mailbox_id) DO UPDATE
                SET messages = messages + 1, bytes = bytes + NEW.size;
        END;
        ALTER TABLE duplicates ADD COLUMN expires REAL;
        UPDATE duplicates SET expires = delivered + {LEGACY_MEMORY_SECONDS};
        CREATE INDEX duplicates_expires ON duplicates (expires);
        ALTER TABLE vacation_memory ADD COLUMN expires REAL;
        UPDATE vacation_memory SET expires = sent + {LEGACY_MEMORY_SECONDS};
        CREATE INDEX vacation_memory_expires ON vacation_memory (expires);
        DROP TABLE IF EXISTS domains;
    """)


def _original_recipient_in_trace(conn: sqlite3.Connection) -> None:
    """The trace remembers each copy's X-Original-To (DSN's ORCPT, or the RCPT address)."""
    conn.execute("ALTER TABLE deliveries ADD COLUMN original_to TEXT NOT NULL DEFAULT ''")


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Statement by statement inside the caller's transaction (`executescript` would commit
    it first). A trigger body holds semicolons, so pieces are joined until complete."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                conn.execute(statement)
            statement = ""


def _named_sieve_scripts(conn: sqlite3.Connection) -> None:
    """Several named scripts per mailbox, at most one of them active (the one delivery runs).
    The one script a mailbox had becomes its active script `main`."""
    _execute_script(conn, """
        CREATE TABLE sieve_scripts_named (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
            name TEXT NOT NULL,
            script TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 0,
            updated REAL,
            PRIMARY KEY (mailbox_id, name)
        );
        INSERT INTO sieve_scripts_named (mailbox_id, name, script, active, updated)
            SELECT mailbox_id, 'main', script, 1, updated FROM sieve_scripts;
        DROP TABLE sieve_scripts;
        ALTER TABLE sieve_scripts_named RENAME TO sieve_scripts;
        CREATE UNIQUE INDEX sieve_scripts_one_active ON sieve_scripts (mailbox_id)
            WHERE active = 1;
    """)


def _quota_warning_marks(conn: sqlite3.Connection) -> None:
    """Which quota warnings a mailbox has had: one row per mailbox and level (parts per
    million of its quota) while its usage stays at or above that level. The trigger forgets
    a mark as soon as usage drops below its level, whatever lowered it (a deletion, a
    reindex), so the next rise past it warns again."""
    _execute_script(conn, """
        CREATE TABLE quota_warnings (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
            level INTEGER NOT NULL,
            PRIMARY KEY (mailbox_id, level)
        );
        CREATE TRIGGER quota_warnings_reset AFTER UPDATE OF bytes ON usage
        WHEN NEW.bytes < OLD.bytes BEGIN
            DELETE FROM quota_warnings WHERE mailbox_id = NEW.mailbox_id
                AND NEW.bytes * 1000000 < level * (
                    SELECT quota FROM mailboxes WHERE id = NEW.mailbox_id);
        END;
    """)


# Step N takes an index from version N - 1 to N. Append only; never edit a released step.
STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: _usage_counters_and_expiring_memories,
    3: _named_sieve_scripts,
    4: _quota_warning_marks,
    5: _original_recipient_in_trace,
}
SCHEMA_VERSION = max(STEPS)


def version(conn: sqlite3.Connection) -> int:
    """The schema version of an index; 0 for an empty file."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def upgrade(db: sqlite_utils.Database) -> None:
    """Bring the index to SCHEMA_VERSION; the caller holds the write transaction."""
    conn = db.conn
    current = version(conn)
    if current == 0:
        _first_schema(db)
        current = 1
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"the index has schema version {current}, newer than this "
                           f"lmtpd ({SCHEMA_VERSION}); upgrade lmtpd")
    for step in range(current + 1, SCHEMA_VERSION + 1):
        STEPS[step](conn)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
