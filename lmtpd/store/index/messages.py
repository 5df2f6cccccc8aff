"""Message rows: the cache of the Maildirs that `lmtpd reindex` rebuilds, and mailbox usage."""

from __future__ import annotations

import time
from collections.abc import Iterable

from lmtpd import faults
from lmtpd.store.index.connection import Database
from lmtpd.store.index.rows import (
    MESSAGE_COLUMNS,
    MessageMeta,
    MessageRow,
    NotRecorded,
    message_row,
)
from lmtpd.store.maildir import StoredFile


class MessageQueries(Database):
    def record_delivery(self, mailbox_id: int, stored: StoredFile, meta: MessageMeta, *,
                        duplicate_window: int = 0, quota: int = 0,
                        check_duplicate: bool = True) -> int | NotRecorded:
        """One message row, and its duplicate-suppression mark, in one transaction; returns
        the row's id.

        With a `duplicate_window`, a message whose Message-ID this mailbox received within
        it is not recorded (NotRecorded.DUPLICATE, unless `check_duplicate` is off) and the
        recorded one is remembered for that long; with a `quota`, a message that would take
        the mailbox past it is not recorded (NotRecorded.OVER_QUOTA). Checked here, in the
        transaction that writes the row, two concurrent deliveries cannot both pass.

        A file that already has its row was found by a comparison of the Maildir with the
        index while its delivery was between the file and the row: it is this delivery's own
        file, counted already, never a duplicate of itself."""
        faults.check("index")
        now = time.time()
        with self.transaction():
            remember = bool(duplicate_window and meta.message_id)
            refusal = None
            if remember and check_duplicate and self._seen(mailbox_id, meta.message_id, now):
                refusal = NotRecorded.DUPLICATE
            elif quota > 0 and self.usage(mailbox_id)[1] + stored.size > quota:
                refusal = NotRecorded.OVER_QUOTA
            # Only a refused file can be one the comparison found (it left a mark, and the
            # file counts in usage): looked up then, not on every delivery.
            row_id = self._row_of(mailbox_id, stored) if refusal else None
            if refusal and row_id is None:
                return refusal
            if row_id is None:
                row_id = self._insert(mailbox_id, stored, meta)
            if remember:
                self.conn.execute(
                    "INSERT INTO duplicates (mailbox_id, message_id, delivered, expires)"
                    " VALUES (?,?,?,?) ON CONFLICT DO UPDATE SET"
                    " delivered = excluded.delivered, expires = excluded.expires",
                    (mailbox_id, meta.message_id, now, now + duplicate_window),
                )
            return row_id

    def _row_of(self, mailbox_id: int, stored: StoredFile) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM messages WHERE mailbox_id = ? AND folder = ? AND uidl = ?",
            (mailbox_id, stored.folder, stored.uidl),
        ).fetchone()
        return int(row[0]) if row else None

    def _seen(self, mailbox_id: int, key: str, now: float) -> bool:
        row = self.conn.execute(
            "SELECT expires FROM duplicates WHERE mailbox_id = ? AND message_id = ?",
            (mailbox_id, key),
        ).fetchone()
        return bool(row) and row[0] is not None and row[0] > now

    def _insert(self, mailbox_id: int, stored: StoredFile, meta: MessageMeta) -> int:
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
        return int(cursor.lastrowid or 0)

    def usage(self, mailbox_id: int) -> tuple[int, int]:
        """(messages, bytes) over all folders, from the counter kept with the rows."""
        row = self.conn.execute(
            "SELECT messages, bytes FROM usage WHERE mailbox_id = ?", (mailbox_id,)
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def reconcile_usage(self, mailbox_id: int) -> None:
        """Set the usage counter from the rows themselves (reindex)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO usage (mailbox_id, messages, bytes)"
                " SELECT ?, count(*), coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ?"
                " ON CONFLICT(mailbox_id) DO UPDATE SET messages = excluded.messages,"
                " bytes = excluded.bytes",
                (mailbox_id, mailbox_id),
            )

    def messages(self, mailbox_id: int, folder: str | None = None) -> list[MessageRow]:
        if folder is None:
            rows = self.conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY id",
                (mailbox_id,),
            )
        else:
            rows = self.conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND folder = ?"
                " ORDER BY received, id",
                (mailbox_id, folder),
            )
        return [message_row(r) for r in rows]

    def latest_messages(self, mailbox_id: int, limit: int) -> list[MessageRow]:
        """The `limit` most recently received messages of a mailbox, in any folder, newest
        first."""
        rows = self.conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?"
            " ORDER BY received DESC, id DESC LIMIT ?",
            (mailbox_id, limit),
        )
        return [message_row(r) for r in rows]

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
        *,
        duplicate_window: int = 0,
    ) -> None:
        """Apply what a comparison of a mailbox's files with its rows found, in one short
        transaction. Found files that arrived within the duplicate window are remembered
        like a delivery, so that an MTA retrying the delivery that wrote one of them (its
        250 was never sent) does not store it a second time."""
        now = time.time()
        with self.transaction():
            for stored, meta in add:
                window = duplicate_window - (now - stored.received)
                self.record_delivery(mailbox_id, stored, meta, check_duplicate=False,
                                     duplicate_window=int(max(0, window)))
            for row_id, stored in moved:
                self.update_message_file(row_id, stored.subdir, stored.filename, stored.flags)
            self.delete_messages(remove)
            self.reconcile_usage(mailbox_id)
