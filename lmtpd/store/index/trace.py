"""The delivery log behind `lmtpd trace` and `lmtpd stats`: one row per recipient outcome."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from lmtpd.store.index.connection import Database


class TraceBatch(NamedTuple):
    """The trace rows of one LMTP transaction."""

    lmtp_id: str
    message_id: str
    sender: str
    rows: list[dict[str, object]]


class TraceQueries(Database):
    def record_outcomes(self, lmtp_id: str, message_id: str, sender: str,
                        rows: list[dict[str, object]]) -> None:
        now = time.time()
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO deliveries (at, lmtp_id, message_id, sender, recipient, outcome,"
                " stage, code, status, reply, mailboxes, files, actions, seconds, original_to)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(now, lmtp_id, message_id, sender, row["recipient"], row["outcome"],
                  row["stage"], row["code"], row["status"], row["reply"],
                  row["mailboxes"], row["files"], row["actions"], row["seconds"],
                  row.get("original_to", ""))
                 for row in rows],
            )

    def record_outcomes_batches(self, batches: Iterable[TraceBatch]) -> None:
        """record_outcomes for several transactions, in one transaction."""
        with self.transaction():
            for lmtp_id, message_id, sender, rows in batches:
                self.record_outcomes(lmtp_id, message_id, sender, rows)

    def trace(self, message_id: str) -> list[dict[str, object]]:
        cursor = self.conn.execute(
            "SELECT at, lmtp_id, message_id, sender, recipient, outcome, stage, code, status,"
            " reply, mailboxes, files, actions, seconds, original_to FROM deliveries"
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
