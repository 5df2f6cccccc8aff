"""The SQLite index: schema and every query. Nothing else in lmtpd speaks SQL.

Account tables (domains, mailboxes, aliases, sieve_scripts, vacation_memory, duplicates) are
authoritative. The `messages` table is a cache of the Maildirs that `lmtpd reindex` rebuilds.

An `Index` object wraps one connection and must be used from one thread at a time; the server
gives it a thread of its own (see lmtpd.store.worker).
"""

from __future__ import annotations

import enum
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from lmtpd import faults
from lmtpd.store import generation
from lmtpd.store.maildir import StoredFile

SCHEMA_VERSION = 1


class IndexError_(Exception):
    """Base for index failures that callers translate into user-facing errors."""


class DuplicateError(IndexError_):
    pass


class NotFoundError(IndexError_):
    pass


@dataclass(frozen=True)
class MailboxRow:
    id: int
    address: str
    domain: str
    password_hash: str
    quota: int
    enabled: bool
    created: float


@dataclass(frozen=True)
class MessageRow:
    id: int
    mailbox_id: int
    folder: str
    subdir: str
    filename: str
    uidl: str
    size: int
    crlf_size: int
    received: float
    message_id: str
    from_addr: str
    subject: str
    flags: str


class NotRecorded(enum.Enum):
    """Why record_delivery wrote no row."""

    DUPLICATE = "duplicate"
    OVER_QUOTA = "over quota"


@dataclass(frozen=True)
class MessageMeta:
    """What the index records of a message besides its file."""

    message_id: str = ""
    from_addr: str = ""
    subject: str = ""


_MAILBOX_COLS = "id, address, domain, password_hash, quota, enabled, created"
_MESSAGE_COLS = ("id, mailbox_id, folder, subdir, filename, uidl, size, crlf_size, received, "
                 "message_id, from_addr, subject, flags")


def _mailbox(row: tuple) -> MailboxRow:
    return MailboxRow(row[0], row[1], row[2], row[3] or "", row[4], bool(row[5]), row[6])


def _message(row: tuple) -> MessageRow:
    return MessageRow(*row)


def _open_writer_lock(path: Path) -> int | None:
    try:
        # Read-only is enough for flock(), so a server running as the service user can share
        # the file with a CLI run as root, whichever created it.
        return os.open(f"{path}-writer", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None


class Index:
    def __init__(self, path: Path, *, busy_timeout: float = 10.0, durable: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self.db = sqlite_utils.Database(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        # The message rows are a cache that reindex rebuilds; account changes made by the CLI
        # ask for full durability.
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._in_transaction = False
        self._accounts_changed = False
        self._writer_lock = _open_writer_lock(path)
        self._create_schema()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()
        if self._writer_lock is not None:
            os.close(self._writer_lock)
            self._writer_lock = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE so a writer waits for the lock up front instead of failing to
        upgrade a read lock half-way. Nested use joins the outer transaction."""
        if self._in_transaction:
            yield
            return
        locked = self._lock_writers()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._in_transaction = False
                self.conn.execute("ROLLBACK")
                raise
            self._in_transaction = False
            self.conn.execute("COMMIT")
        finally:
            if locked:
                fcntl.flock(self._writer_lock, fcntl.LOCK_UN)
            changed, self._accounts_changed = self._accounts_changed, False
        if changed:
            # After the commit: a server that sees the new value reads the new accounts.
            generation.bump(self.path)

    @contextmanager
    def _account_change(self) -> Iterator[None]:
        """A write to mailboxes, aliases or Sieve scripts: servers drop what they cached of
        accounts once it is committed (lmtpd.store.generation)."""
        with self.transaction():
            self._accounts_changed = True
            yield

    def _lock_writers(self) -> bool:
        """Queue for the write lock on a flock() of `<index>-writer` before BEGIN IMMEDIATE.

        SQLite makes a second writer poll: its busy handler sleeps 1, 2, 5, 10, 15... ms
        between tries, and with several server processes committing deliveries those sleeps
        added up to a fifth of a run (measured: 386 waits of median 1.4 ms, up to 20 ms, in
        a 4-second run at 16 sessions). A blocked flock() wakes as soon as the holder lets
        go, and the kernel releases it when a holder dies. SQLite's own locking still
        decides; this only orders the queue, so a writer that cannot open the file goes
        without."""
        if self._writer_lock is None:
            return False
        try:
            fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
        except OSError:
            return False
        return True

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads in one read transaction: one consistent view, and one round of WAL
        locking instead of one per query. No writes inside."""
        if self._in_transaction or self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def _create_schema(self) -> None:
        db = self.db
        existing = set(db.table_names())
        if {"meta", "mailboxes", "messages", "deliveries", "login_throttle"} <= existing:
            return
        with self.transaction():
            db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            db["domains"].create({"name": str, "created": float}, pk="name", if_not_exists=True)
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
            db["meta"].upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")

    # -- domains and mailboxes -------------------------------------------------------------

    def add_mailbox(self, address: str, domain: str, password_hash: str, quota: int) -> int:
        with self._account_change():
            if self.get_mailbox(address) is not None:
                raise DuplicateError(f"mailbox {address} already exists")
            self.conn.execute(
                "INSERT OR IGNORE INTO domains (name, created) VALUES (?, ?)", (domain, time.time())
            )
            cursor = self.conn.execute(
                "INSERT INTO mailboxes (address, domain, password_hash, quota, enabled, created)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                (address, domain, password_hash, quota, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def get_mailbox(self, address: str) -> MailboxRow | None:
        row = self.conn.execute(
            f"SELECT {_MAILBOX_COLS} FROM mailboxes WHERE address = ?", (address,)
        ).fetchone()
        return _mailbox(row) if row else None

    def require_mailbox(self, address: str) -> MailboxRow:
        mailbox = self.get_mailbox(address)
        if mailbox is None:
            raise NotFoundError(f"no such mailbox: {address}")
        return mailbox

    def list_mailboxes(self) -> list[MailboxRow]:
        rows = self.conn.execute(f"SELECT {_MAILBOX_COLS} FROM mailboxes ORDER BY address")
        return [_mailbox(r) for r in rows]

    def domains(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM domains ORDER BY name")]

    def _update_mailbox(self, address: str, column: str, value: object) -> None:
        with self._account_change():
            cursor = self.conn.execute(
                f"UPDATE mailboxes SET {column} = ? WHERE address = ?", (value, address)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no such mailbox: {address}")

    def set_password(self, address: str, password_hash: str) -> None:
        self._update_mailbox(address, "password_hash", password_hash)

    def set_quota(self, address: str, quota: int) -> None:
        self._update_mailbox(address, "quota", quota)

    def set_enabled(self, address: str, enabled: bool) -> None:
        self._update_mailbox(address, "enabled", 1 if enabled else 0)

    def delete_mailbox(self, address: str) -> MailboxRow:
        with self._account_change():
            mailbox = self.require_mailbox(address)
            for table in ("messages", "sieve_scripts", "vacation_memory", "duplicates"):
                self.conn.execute(f"DELETE FROM {table} WHERE mailbox_id = ?", (mailbox.id,))
            self.conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox.id,))
            return mailbox

    # -- aliases ---------------------------------------------------------------------------

    def add_alias(self, alias: str, targets: Iterable[str]) -> None:
        with self._account_change():
            for target in targets:
                self.conn.execute(
                    "INSERT OR IGNORE INTO aliases (alias, target) VALUES (?, ?)", (alias, target)
                )

    def alias_targets(self, alias: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT target FROM aliases WHERE alias = ? ORDER BY rowid", (alias,)
        )
        return [r[0] for r in rows]

    def list_aliases(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for alias, target in self.conn.execute(
            "SELECT alias, target FROM aliases ORDER BY alias, rowid"
        ):
            result.setdefault(alias, []).append(target)
        return result

    def delete_alias(self, alias: str) -> None:
        with self._account_change():
            cursor = self.conn.execute("DELETE FROM aliases WHERE alias = ?", (alias,))
            if cursor.rowcount == 0:
                raise NotFoundError(f"no such alias: {alias}")

    # -- sieve scripts and vacation memory -------------------------------------------------

    def get_sieve_script(self, mailbox_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT script FROM sieve_scripts WHERE mailbox_id = ?", (mailbox_id,)
        ).fetchone()
        return row[0] if row else None

    def set_sieve_script(self, mailbox_id: int, script: str) -> None:
        with self._account_change():
            self.conn.execute(
                "INSERT INTO sieve_scripts (mailbox_id, script, updated) VALUES (?, ?, ?)"
                " ON CONFLICT(mailbox_id) DO UPDATE SET script = excluded.script,"
                " updated = excluded.updated",
                (mailbox_id, script, time.time()),
            )

    def delete_sieve_script(self, mailbox_id: int) -> bool:
        with self._account_change():
            cursor = self.conn.execute(
                "DELETE FROM sieve_scripts WHERE mailbox_id = ?", (mailbox_id,)
            )
            return cursor.rowcount > 0

    def vacation_recently_sent(self, mailbox_id: int, handle: str, sender: str,
                               since: float) -> bool:
        row = self.conn.execute(
            "SELECT sent FROM vacation_memory WHERE mailbox_id = ? AND handle = ? AND sender = ?",
            (mailbox_id, handle, sender),
        ).fetchone()
        return bool(row) and row[0] >= since

    def remember_vacation(self, mailbox_id: int, handle: str, sender: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO vacation_memory (mailbox_id, handle, sender, sent) VALUES (?,?,?,?)"
                " ON CONFLICT DO UPDATE SET sent = excluded.sent",
                (mailbox_id, handle, sender, time.time()),
            )

    # -- duplicate suppression -------------------------------------------------------------

    def is_duplicate(self, mailbox_id: int, message_id: str, since: float) -> bool:
        row = self.conn.execute(
            "SELECT delivered FROM duplicates WHERE mailbox_id = ? AND message_id = ?",
            (mailbox_id, message_id),
        ).fetchone()
        return bool(row) and row[0] >= since

    def remember_duplicate(self, mailbox_id: int, key: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO duplicates (mailbox_id, message_id, delivered) VALUES (?,?,?)"
                " ON CONFLICT DO UPDATE SET delivered = excluded.delivered",
                (mailbox_id, key, time.time()),
            )

    # -- POP3 login throttle ---------------------------------------------------------------

    def throttle_load(self, keys: list[str]) -> dict[str, tuple[int, float, float]]:
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            f"SELECT key, failures, last_failure, locked_until FROM login_throttle"
            f" WHERE key IN ({marks})", keys,
        )
        return {key: (failures, last, until) for key, failures, last, until in rows}

    def throttle_save(self, records: dict[str, tuple[int, float, float]],
                      forget_before: float) -> None:
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO login_throttle (key, failures, last_failure, locked_until)"
                " VALUES (?,?,?,?) ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,"
                " last_failure = excluded.last_failure, locked_until = excluded.locked_until",
                [(key, *values) for key, values in records.items()],
            )
            # Entries nobody failed with lately and that are not locked are of no use.
            self.conn.execute(
                "DELETE FROM login_throttle WHERE last_failure < ? AND locked_until < ?",
                (forget_before, forget_before),
            )

    def throttle_delete(self, keys: list[str]) -> None:
        with self.transaction():
            self.conn.executemany("DELETE FROM login_throttle WHERE key = ?",
                                  [(k,) for k in keys])

    # -- delivery log ----------------------------------------------------------------------

    def record_outcomes(self, lmtp_id: str, message_id: str, sender: str,
                        rows: list[dict[str, object]], retention: int) -> None:
        now = time.time()
        with self.transaction():
            cursor = None
            for row in rows:
                cursor = self.conn.execute(
                    "INSERT INTO deliveries (at, lmtp_id, message_id, sender, recipient, outcome,"
                    " stage, code, status, reply, mailboxes, files, actions, seconds)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (now, lmtp_id, message_id, sender, row["recipient"], row["outcome"],
                     row["stage"], row["code"], row["status"], row["reply"],
                     row["mailboxes"], row["files"], row["actions"], row["seconds"]),
                )
            # Prune now and then rather than on every insert.
            if retention and cursor is not None and (cursor.lastrowid or 0) % 500 == 0:
                self.conn.execute("DELETE FROM deliveries WHERE at < ?", (now - retention,))

    def record_outcomes_batches(self, batches: Iterable[tuple[str, str, str,
                                                              list[dict[str, object]]]],
                                retention: int) -> None:
        """record_outcomes for several transactions, in one transaction."""
        with self.transaction():
            for lmtp_id, message_id, sender, rows in batches:
                self.record_outcomes(lmtp_id, message_id, sender, rows, retention)

    def trace(self, message_id: str) -> list[dict[str, object]]:
        cursor = self.conn.execute(
            "SELECT at, lmtp_id, message_id, sender, recipient, outcome, stage, code, status,"
            " reply, mailboxes, files, actions, seconds FROM deliveries"
            " WHERE message_id = ? OR message_id = ? ORDER BY id",
            (message_id, f"<{message_id.strip('<>')}>"),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def delivery_totals(self, since: float = 0.0) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT outcome, count(*) FROM deliveries WHERE at >= ? GROUP BY outcome", (since,)
        )
        return {outcome: int(count) for outcome, count in rows}

    # -- messages --------------------------------------------------------------------------

    def record_delivery(self, mailbox_id: int, stored: StoredFile, meta: MessageMeta,
                        remember_message_id: bool, *, duplicate_since: float | None = None,
                        quota: int = 0) -> int | NotRecorded:
        """One message row, and the duplicate-suppression mark, in one transaction; returns
        the row's id.

        With `duplicate_since`, a message whose Message-ID this mailbox received since then is
        not recorded (NotRecorded.DUPLICATE); with a `quota`, neither is one that would take
        the mailbox past it (NotRecorded.OVER_QUOTA). Checked here, in the transaction that
        writes the row, two concurrent deliveries cannot both pass."""
        faults.check("index")
        with self.transaction():
            if (duplicate_since is not None and meta.message_id
                    and self.is_duplicate(mailbox_id, meta.message_id, duplicate_since)):
                return NotRecorded.DUPLICATE
            if quota > 0 and self.usage(mailbox_id)[1] + stored.size > quota:
                return NotRecorded.OVER_QUOTA
            cursor = self.conn.execute(
                "INSERT INTO messages (mailbox_id, folder, subdir, filename, uidl, size,"
                " crlf_size, received, message_id, from_addr, subject, flags)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(mailbox_id, folder, uidl) DO UPDATE SET"
                " subdir = excluded.subdir, filename = excluded.filename",
                (mailbox_id, stored.folder, stored.subdir, stored.filename, stored.uidl,
                 stored.size, stored.crlf_size, stored.received, meta.message_id,
                 meta.from_addr, meta.subject, stored.flags),
            )
            if remember_message_id and meta.message_id:
                self.conn.execute(
                    "INSERT INTO duplicates (mailbox_id, message_id, delivered) VALUES (?,?,?)"
                    " ON CONFLICT DO UPDATE SET delivered = excluded.delivered",
                    (mailbox_id, meta.message_id, time.time()),
                )
            return int(cursor.lastrowid or 0)

    def usage(self, mailbox_id: int) -> tuple[int, int]:
        """(messages, bytes) over all folders."""
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ?",
            (mailbox_id,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def messages(self, mailbox_id: int, folder: str | None = None) -> list[MessageRow]:
        if folder is None:
            rows = self.conn.execute(
                f"SELECT {_MESSAGE_COLS} FROM messages WHERE mailbox_id = ? ORDER BY id",
                (mailbox_id,),
            )
        else:
            rows = self.conn.execute(
                f"SELECT {_MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND folder = ?"
                " ORDER BY received, id",
                (mailbox_id, folder),
            )
        return [_message(r) for r in rows]

    def delete_messages(self, ids: Iterable[int]) -> None:
        with self.transaction():
            self.conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])

    def update_message_file(self, message_id: int, subdir: str, filename: str,
                            flags: str) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE messages SET subdir = ?, filename = ?, flags = ? WHERE id = ?",
                (subdir, filename, flags, message_id),
            )

    def drop_message_rows(self, mailbox_id: int | None = None) -> None:
        with self.transaction():
            if mailbox_id is None:
                self.conn.execute("DELETE FROM messages")
            else:
                self.conn.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))

    def apply_sync(
        self,
        mailbox_id: int,
        add: Iterable[tuple[StoredFile, MessageMeta]],
        moved: Iterable[tuple[int, StoredFile]],
        remove: Iterable[int],
    ) -> None:
        """Apply what reindex found for one mailbox, in one short transaction."""
        with self.transaction():
            for stored, meta in add:
                self.record_delivery(mailbox_id, stored, meta, remember_message_id=False)
            for row_id, stored in moved:
                self.update_message_file(row_id, stored.subdir, stored.filename, stored.flags)
            self.delete_messages(remove)
