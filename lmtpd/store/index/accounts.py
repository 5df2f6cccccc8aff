"""Account queries: mailboxes and aliases (authoritative data; back it up)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from lmtpd.store.index.connection import Database
from lmtpd.store.index.rows import (
    MAILBOX_COLUMNS,
    DuplicateError,
    MailboxRow,
    NotFoundError,
    mailbox_row,
)


class AccountQueries(Database):
    # -- mailboxes -------------------------------------------------------------------------

    def add_mailbox(self, address: str, domain: str, password_hash: str, quota: int) -> int:
        with self.account_change():
            if self.get_mailbox(address) is not None:
                raise DuplicateError(f"mailbox {address} already exists")
            cursor = self.conn.execute(
                "INSERT INTO mailboxes (address, domain, password_hash, quota, enabled, created)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                (address, domain, password_hash, quota, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def get_mailbox(self, address: str) -> MailboxRow | None:
        row = self.conn.execute(
            f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE address = ?", (address,)
        ).fetchone()
        return mailbox_row(row) if row else None

    def require_mailbox(self, address: str) -> MailboxRow:
        mailbox = self.get_mailbox(address)
        if mailbox is None:
            raise NotFoundError(f"no such mailbox: {address}")
        return mailbox

    def mailbox_domains(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT domain FROM mailboxes")]

    def list_mailboxes(self) -> list[MailboxRow]:
        rows = self.conn.execute(f"SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY address")
        return [mailbox_row(r) for r in rows]

    def _update_mailbox(self, address: str, column: str, value: object) -> None:
        with self.account_change():
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
        with self.account_change():
            mailbox = self.require_mailbox(address)
            for table in ("messages", "usage", "sieve_scripts", "vacation_memory",
                          "duplicates"):
                self.conn.execute(f"DELETE FROM {table} WHERE mailbox_id = ?", (mailbox.id,))
            self.conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox.id,))
            return mailbox

    # -- aliases ---------------------------------------------------------------------------

    def add_alias(self, alias: str, targets: Iterable[str]) -> None:
        with self.account_change():
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
        with self.account_change():
            cursor = self.conn.execute("DELETE FROM aliases WHERE alias = ?", (alias,))
            if cursor.rowcount == 0:
                raise NotFoundError(f"no such alias: {alias}")
