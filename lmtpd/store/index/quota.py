"""Quota warning marks: which warning levels a mailbox has been sent, so each rise past a
level warns once (the schema's trigger forgets a mark when usage drops below it)."""

from __future__ import annotations

from collections.abc import Iterable

from lmtpd.store.index.connection import Database

# Levels are stored as parts per million of the quota: integers compare exactly in SQL.
PER = 1_000_000


def level_of(fraction: float) -> int:
    return round(fraction * PER)


class QuotaQueries(Database):
    def quota_warning_due(self, mailbox_id: int, quota: int,
                          levels: Iterable[int]) -> int | None:
        """The highest level the mailbox's usage is now at or above without having been
        warned of it, marked as warned with every lower one crossed alongside (one warning
        for a jump past several levels, as Dovecot sends); None when nothing is due. Marks
        of levels usage is below (the quota was raised) are forgotten."""
        if quota <= 0:
            return None
        with self.transaction():
            row = self.conn.execute("SELECT bytes FROM usage WHERE mailbox_id = ?",
                                    (mailbox_id,)).fetchone()
            used = int(row[0]) if row else 0
            marked = {row[0] for row in self.conn.execute(
                "SELECT level FROM quota_warnings WHERE mailbox_id = ?", (mailbox_id,))}
            reached = {level for level in levels if used * PER >= level * quota}
            self.conn.executemany(
                "DELETE FROM quota_warnings WHERE mailbox_id = ? AND level = ?",
                [(mailbox_id, level) for level in marked - reached])
            due = reached - marked
            self.conn.executemany(
                "INSERT INTO quota_warnings (mailbox_id, level) VALUES (?, ?)",
                [(mailbox_id, level) for level in due])
            return max(due) if due else None

    def forget_quota_warning(self, mailbox_id: int, level: int) -> None:
        """Undo a mark whose warning could not be stored, so the next delivery tries again."""
        with self.transaction():
            self.conn.execute("DELETE FROM quota_warnings WHERE mailbox_id = ? AND level = ?",
                              (mailbox_id, level))
