"""Memories with a window: duplicate marks, vacation replies sent, failed logins. Each row
carries the moment it may be forgotten, and `prune_memories` forgets what is past it."""

from __future__ import annotations

import time

from lmtpd.store.index.connection import Database


class MemoryQueries(Database):
    # -- duplicate marks (Message-IDs, redirects, Sieve's duplicate test) -----------------

    def is_duplicate(self, mailbox_id: int, key: str) -> bool:
        """Whether `key` was remembered for this mailbox and has not expired."""
        row = self.conn.execute(
            "SELECT expires FROM duplicates WHERE mailbox_id = ? AND message_id = ?",
            (mailbox_id, key),
        ).fetchone()
        return bool(row) and row[0] is not None and row[0] > time.time()

    def remember_duplicate(self, mailbox_id: int, key: str, seconds: float) -> None:
        now = time.time()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO duplicates (mailbox_id, message_id, delivered, expires)"
                " VALUES (?,?,?,?) ON CONFLICT DO UPDATE SET"
                " delivered = excluded.delivered, expires = excluded.expires",
                (mailbox_id, key, now, now + seconds),
            )

    # -- vacation ----------------------------------------------------------------------------

    def vacation_recently_sent(self, mailbox_id: int, handle: str, sender: str) -> bool:
        row = self.conn.execute(
            "SELECT expires FROM vacation_memory"
            " WHERE mailbox_id = ? AND handle = ? AND sender = ?",
            (mailbox_id, handle, sender),
        ).fetchone()
        return bool(row) and row[0] is not None and row[0] > time.time()

    def remember_vacation(self, mailbox_id: int, handle: str, sender: str,
                          seconds: float) -> None:
        now = time.time()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO vacation_memory (mailbox_id, handle, sender, sent, expires)"
                " VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE SET"
                " sent = excluded.sent, expires = excluded.expires",
                (mailbox_id, handle, sender, now, now + seconds),
            )

    # -- POP3 and ManageSieve login throttle -----------------------------------------------

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

    # -- forgetting --------------------------------------------------------------------------

    def prune_memories(self, *, trace_retention: int, throttle_window: int) -> int:
        """Forget every memory past its window; the number of rows removed."""
        now = time.time()
        removed = 0
        with self.transaction():
            for sql, args in (
                ("DELETE FROM duplicates WHERE expires < ?", (now,)),
                ("DELETE FROM vacation_memory WHERE expires < ?", (now,)),
                ("DELETE FROM deliveries WHERE at < ?", (now - trace_retention,)),
                ("DELETE FROM login_throttle WHERE last_failure < ? AND locked_until < ?",
                 (now - throttle_window, now)),
            ):
                if sql.startswith("DELETE FROM deliveries") and not trace_retention:
                    continue
                removed += self.conn.execute(sql, args).rowcount
        return removed
