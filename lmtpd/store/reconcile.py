"""Finding messages the index lost: compare a folder's `new/` and `cur/` with its rows and add
the files that have none, each with the UIDL its file name carries (an index restored from a
backup, a crash between a file's fsync and its row's commit, a file another program dropped
in). Also forgets `tmp/` files older than 36 hours, as Maildir says.

Listing runs in the disk pool and writing rows on the index thread, one folder at a time, so
neither holds up deliveries for long.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow, MessageMeta, MessageRow
from lmtpd.store.meta import read_meta
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.store")
STALE_TMP_SECONDS = 36 * 3600


@dataclass
class Changes:
    """What a folder's files say that its rows do not."""

    add: list[tuple[maildir.StoredFile, MessageMeta]] = field(default_factory=list)
    moved: list[tuple[int, maildir.StoredFile]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.moved)


def list_folder(directory: Path) -> dict[str, str]:
    """File name -> `new` or `cur`, for the message files of one Maildir folder."""
    found: dict[str, str] = {}
    for subdir in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(directory / subdir):
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    found[entry.name] = subdir
    return found


def compare(base: Path, folder: str, listing: dict[str, str], rows: list[MessageRow]
            ) -> Changes:
    """The files of `listing` without a row (matched by file name first, then by UIDL, so a
    file renamed by a flag change is a move, not a new message)."""
    changes = Changes()
    known = {row.filename for row in rows}
    unknown = [name for name in listing if name not in known]
    if not unknown:
        return changes
    by_uidl = {row.uidl: row for row in rows}
    for name in unknown:
        subdir = listing[name]
        path = maildir.message_path(base, folder, subdir, name)
        try:
            stored = maildir.describe(folder, subdir, name, str(path))
        except FileNotFoundError:
            continue  # expunged meanwhile
        row = by_uidl.get(stored.uidl)
        if row is not None:
            if row.filename not in listing:
                changes.moved.append((row.id, stored))
            continue
        changes.add.append((stored, read_meta(path)))
    return changes


def remove_stale_tmp(directory: Path, now: float | None = None) -> int:
    """Delete `tmp/` files untouched for 36 hours (a delivery that died half-way)."""
    limit = (time.time() if now is None else now) - STALE_TMP_SECONDS
    removed = 0
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory / "tmp"):
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat(
                        follow_symlinks=False).st_mtime < limit:
                    os.unlink(entry.path)
                    removed += 1
    return removed


class Reconciler:
    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.store = workers.store

    async def folder(self, mailbox: MailboxRow, folder: str,
                     rows: list[MessageRow]) -> list[MessageRow]:
        """The folder's rows after adding what its files say is missing."""
        base = self.store.mailbox_dir(mailbox.address)
        directory = maildir.folder_dir(base, folder)

        def look() -> Changes:
            return compare(base, folder, list_folder(directory), rows)

        changes = await self.workers.io(look)
        if not changes:
            return rows
        window = self.store.config.lmtp.duplicate_window
        store = self.store

        def apply() -> list[MessageRow]:
            store.index.apply_sync(mailbox.id, changes.add, changes.moved, [],
                                   duplicate_window=window)
            return store.index.messages(mailbox.id, folder)

        rows = await self.workers.db(apply)
        log.info("%s %s: %d message files had no index row, %d were renamed; the index "
                 "knows them now", mailbox.address, folder, len(changes.add),
                 len(changes.moved))
        return rows

    def _rows(self, mailbox_id: int, folder: str) -> list[MessageRow]:
        return self.store.index.messages(mailbox_id, folder)

    async def everything(self) -> None:
        """Every folder of every mailbox (at start-up), and stale `tmp/` files."""
        store = self.store
        mailboxes = await self.workers.db(lambda: store.index.list_mailboxes())
        for mailbox in mailboxes:
            base = store.mailbox_dir(mailbox.address)
            folders = await self.workers.io(maildir.list_folders, base)
            for folder in folders:
                rows = await self.workers.db(self._rows, mailbox.id, folder)
                await self.folder(mailbox, folder, rows)
                await self.workers.io(remove_stale_tmp, maildir.folder_dir(base, folder))
