"""`lmtpd reindex` and `lmtpd verify`: the message rows rebuilt from the Maildirs, and the
differences between the two reported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow
from lmtpd.store.mailboxes import Store
from lmtpd.store.meta import read_meta


@dataclass(frozen=True)
class Drift:
    kind: str  # "file-without-row", "row-without-file", "size-drift"
    mailbox: str
    folder: str
    name: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.kind}: {self.mailbox} {self.folder} {self.name}{extra}"


def _targets(store: Store, address: str | None) -> list[MailboxRow]:
    if address:
        return [store.mailbox(address)]
    return store.index.list_mailboxes()


def reindex(store: Store, address: str | None = None,
            progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Rebuild message rows (and usage counters) from the Maildirs; (rows added, rows
    removed). UIDLs come from file names, so every message keeps its UIDL. Locks are held
    only briefly per mailbox, so delivery and POP3 go on meanwhile."""
    total_added = total_removed = 0
    for mailbox in _targets(store, address):
        base = store.mailbox_dir(mailbox.address)
        files = list(maildir.scan(base))
        rows = {(r.folder, r.uidl): r for r in store.index.messages(mailbox.id)}
        add, moved = [], []
        for stored in files:
            row = rows.pop((stored.folder, stored.uidl), None)
            if row is None:
                path = maildir.message_path(base, stored.folder, stored.subdir, stored.filename)
                add.append((stored, read_meta(path)))
            elif (row.subdir, row.filename) != (stored.subdir, stored.filename):
                moved.append((row.id, stored))
        # A row whose file was not seen may belong to a delivery that finished after the
        # scan: only drop it if its file is still absent now.
        stale = [r.id for r in rows.values() if not store.message_path(mailbox, r).exists()]
        store.index.apply_sync(mailbox.id, add, moved, stale)
        total_added += len(add)
        total_removed += len(stale)
        if progress:
            progress(len(files))
    return total_added, total_removed


def count_files(store: Store, address: str | None = None) -> int:
    return sum(maildir.count_messages(store.mailbox_dir(m.address))
               for m in _targets(store, address))


def verify(store: Store, address: str | None = None) -> list[Drift]:
    drift: list[Drift] = []
    for mailbox in _targets(store, address):
        base = store.mailbox_dir(mailbox.address)
        files = {(f.folder, f.uidl): f for f in maildir.scan(base)}
        rows = store.index.messages(mailbox.id)
        for row in rows:
            stored = files.pop((row.folder, row.uidl), None)
            if stored is None:
                drift.append(Drift("row-without-file", mailbox.address, row.folder,
                                   f"{row.subdir}/{row.filename}"))
            elif (stored.size, stored.crlf_size) != (row.size, row.crlf_size):
                drift.append(Drift(
                    "size-drift", mailbox.address, row.folder, stored.relpath,
                    f"index {row.size}/{row.crlf_size}, file "
                    f"{stored.size}/{stored.crlf_size}"))
        drift.extend(Drift("file-without-row", mailbox.address, f.folder, f.relpath)
                     for f in files.values())
        counted = store.index.usage(mailbox.id)
        actual = (len(rows), sum(row.size for row in rows))
        if counted != actual:
            drift.append(Drift("usage-drift", mailbox.address, "-", "-",
                               f"counter {counted[0]} messages/{counted[1]} bytes, rows "
                               f"{actual[0]}/{actual[1]}"))
    return drift
