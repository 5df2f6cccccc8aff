"""Sieve script queries: the named scripts of each mailbox, at most one of them active."""

from __future__ import annotations

import time

from lmtpd.store.index.connection import Database
from lmtpd.store.index.rows import (
    ActiveScriptError,
    DuplicateError,
    NotFoundError,
    ScriptCountError,
    ScriptRow,
)

# Byte length as SQLite counts it: length() of a BLOB cast is the UTF-8 size.
_COLUMNS = "name, active, length(CAST(script AS BLOB)), coalesce(updated, 0)"


class ScriptQueries(Database):
    def get_sieve_script(self, mailbox_id: int) -> str | None:
        """The text of the active script: the one delivery runs."""
        row = self.conn.execute(
            "SELECT script FROM sieve_scripts WHERE mailbox_id = ? AND active = 1",
            (mailbox_id,),
        ).fetchone()
        return row[0] if row else None

    def sieve_scripts(self, mailbox_id: int) -> list[ScriptRow]:
        """Every script of a mailbox, by name, without their text."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM sieve_scripts WHERE mailbox_id = ? ORDER BY name",
            (mailbox_id,),
        )
        return [ScriptRow(r[0], bool(r[1]), r[2], r[3]) for r in rows]

    def personal_scripts(self, mailbox_id: int) -> dict[str, str]:
        """Every script of a mailbox by name, with its text: what `include :personal` reads."""
        rows = self.conn.execute(
            "SELECT name, script FROM sieve_scripts WHERE mailbox_id = ?", (mailbox_id,))
        return {name: text for name, text in rows}

    def sieve_script(self, mailbox_id: int, name: str | None) -> ScriptRow | None:
        """One script with its text; `name` None means the active one."""
        where, args = ("active = 1", ()) if name is None else ("name = ?", (name,))
        row = self.conn.execute(
            f"SELECT {_COLUMNS}, script FROM sieve_scripts WHERE mailbox_id = ? AND {where}",
            (mailbox_id, *args),
        ).fetchone()
        return ScriptRow(row[0], bool(row[1]), row[2], row[3], row[4]) if row else None

    def put_sieve_script(self, mailbox_id: int, name: str, text: str, *,
                         activate: bool = False, max_scripts: int = 0) -> None:
        """Store `text` under `name`, replacing a script of that name (which stays active if
        it was). A new name beyond `max_scripts` (0: no limit) raises ScriptCountError and
        changes nothing."""
        with self.account_change():
            exists = self.conn.execute(
                "SELECT 1 FROM sieve_scripts WHERE mailbox_id = ? AND name = ?",
                (mailbox_id, name)).fetchone()
            if not exists and max_scripts > 0:
                count = self.conn.execute(
                    "SELECT count(*) FROM sieve_scripts WHERE mailbox_id = ?",
                    (mailbox_id,)).fetchone()[0]
                if count >= max_scripts:
                    raise ScriptCountError(
                        f"a mailbox holds at most {max_scripts} scripts", max_scripts)
            self.conn.execute(
                "INSERT INTO sieve_scripts (mailbox_id, name, script, active, updated)"
                " VALUES (?, ?, ?, 0, ?) ON CONFLICT(mailbox_id, name) DO UPDATE SET"
                " script = excluded.script, updated = excluded.updated",
                (mailbox_id, name, text, time.time()),
            )
            if activate:
                self.activate_sieve_script(mailbox_id, name)

    def activate_sieve_script(self, mailbox_id: int, name: str | None) -> None:
        """Make `name` the active script; None: no script is active."""
        with self.account_change():
            if name is not None and not self._script_exists(mailbox_id, name):
                raise NotFoundError(f"no sieve script named {name}")
            self.conn.execute(
                "UPDATE sieve_scripts SET active = 0 WHERE mailbox_id = ? AND active = 1",
                (mailbox_id,))
            if name is not None:
                self.conn.execute(
                    "UPDATE sieve_scripts SET active = 1 WHERE mailbox_id = ? AND name = ?",
                    (mailbox_id, name))

    def delete_sieve_script(self, mailbox_id: int, name: str, *,
                            allow_active: bool = False) -> None:
        """Remove a script. The active one only with `allow_active` (ActiveScriptError
        otherwise); the mailbox then has no active script."""
        with self.account_change():
            row = self.conn.execute(
                "SELECT active FROM sieve_scripts WHERE mailbox_id = ? AND name = ?",
                (mailbox_id, name)).fetchone()
            if row is None:
                raise NotFoundError(f"no sieve script named {name}")
            if row[0] and not allow_active:
                raise ActiveScriptError(f"sieve script {name} is active")
            self.conn.execute(
                "DELETE FROM sieve_scripts WHERE mailbox_id = ? AND name = ?",
                (mailbox_id, name))

    def rename_sieve_script(self, mailbox_id: int, old: str, new: str) -> None:
        """Rename a script; an active script stays active under its new name."""
        with self.account_change():
            if not self._script_exists(mailbox_id, old):
                raise NotFoundError(f"no sieve script named {old}")
            if self._script_exists(mailbox_id, new):
                raise DuplicateError(f"a sieve script named {new} exists already")
            self.conn.execute(
                "UPDATE sieve_scripts SET name = ?, updated = ? WHERE mailbox_id = ? AND name = ?",
                (new, time.time(), mailbox_id, old))

    def _script_exists(self, mailbox_id: int, name: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM sieve_scripts WHERE mailbox_id = ? AND name = ?",
            (mailbox_id, name)).fetchone() is not None
