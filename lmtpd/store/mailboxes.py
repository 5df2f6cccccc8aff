"""Mailboxes, aliases, quotas, passwords, reindex and verify, built on maildir and index.

Blocking code: the CLI calls it directly; the servers call it through lmtpd.store.worker.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lmtpd import auth
from lmtpd.addresses import (
    AddressError,
    MailboxRef,
    Resolution,
    parse_address,
    parse_domain,
    resolve,
)
from lmtpd.config import Config
from lmtpd.store import generation, maildir
from lmtpd.store.index import DuplicateError, Index, MailboxRow, MessageRow
from lmtpd.store.meta import parse_meta

log = logging.getLogger("lmtpd.store")
__all__ = ["AddressError", "DuplicateError", "MailboxInfo", "Store", "parse_meta"]


class StoreError(Exception):
    """A failed operation with a message for the operator."""


@dataclass
class MailboxInfo:
    address: str
    enabled: bool
    messages: int
    bytes: int
    quota: int
    folders: list[str] = field(default_factory=list)

    def as_json(self, with_folders: bool = True) -> dict[str, object]:
        data: dict[str, object] = {
            "address": self.address, "enabled": self.enabled, "messages": self.messages,
            "bytes": self.bytes, "quota": self.quota,
        }
        if with_folders:
            data["folders"] = self.folders
        return data


@functools.lru_cache(maxsize=4096)
def _mailbox_dir(mail_root: Path, address: str) -> Path:
    """Where a mailbox lives; remembered, since every stored copy asks (an address is
    validated once, and the answer never changes)."""
    return maildir.mailbox_dir(mail_root, parse_address(address))


class Store:
    def __init__(self, config: Config, *, durable_index: bool = False) -> None:
        self.config = config
        self.mail_root = config.store.mail_root
        self.fsync = config.store.fsync
        self._durable_index = durable_index
        self._index: Index | None = None

    @property
    def index(self) -> Index:
        """Opened on first use, so a server started as root opens it only after dropping
        privileges (the files it creates then belong to the service user)."""
        if self._index is None:
            self._index = Index(self.config.store.index_path, durable=self._durable_index)
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def reopen_if_replaced(self) -> bool:
        """On the index thread: when the index file was replaced (restored from a backup),
        open the new one, and tell every server process to drop what it cached of the old."""
        if self._index is None or not self._index.replaced():
            return False
        log.warning("%s was replaced; opening the new index", self._index.path)
        self.close()
        generation.bump(self.config.store.index_path)
        return True

    # -- paths -----------------------------------------------------------------------------

    def mailbox_dir(self, address: str) -> Path:
        return _mailbox_dir(self.mail_root, address)

    # -- accounts --------------------------------------------------------------------------

    def add_mailbox(self, address: str, password: str | None, quota: int = 0) -> MailboxRow:
        parsed = parse_address(address)
        canonical = str(parsed)
        if parsed.domain not in self.config.domains.local:
            raise StoreError(
                f"{canonical}: domain {parsed.domain} is not in domains.local "
                f"({', '.join(self.config.domains.local)})"
            )
        password_hash = auth.hash_password(password) if password else ""
        path = maildir.mailbox_dir(self.mail_root, parsed)
        maildir.ensure_maildir(path, fsync=self.fsync)
        self.index.add_mailbox(canonical, parsed.domain, password_hash, quota)
        return self.index.require_mailbox(canonical)

    def canonical(self, address: str) -> str:
        return str(parse_address(address))

    def mailbox(self, address: str) -> MailboxRow:
        return self.index.require_mailbox(self.canonical(address))

    def info(self, mailbox: MailboxRow, with_folders: bool = True) -> MailboxInfo:
        count, size = self.index.usage(mailbox.id)
        folders = maildir.list_folders(self.mailbox_dir(mailbox.address)) if with_folders else []
        return MailboxInfo(mailbox.address, mailbox.enabled, count, size, mailbox.quota, folders)

    def set_password(self, address: str, password: str) -> None:
        self.index.set_password(self.canonical(address), auth.hash_password(password))

    def set_quota(self, address: str, quota: int) -> None:
        self.index.set_quota(self.canonical(address), quota)

    def set_enabled(self, address: str, enabled: bool) -> None:
        self.index.set_enabled(self.canonical(address), enabled)

    def delete_mailbox(self, address: str, purge: bool) -> None:
        mailbox = self.index.delete_mailbox(self.canonical(address))
        if purge:
            path = self.mailbox_dir(mailbox.address)
            if path.exists():
                maildir.remove_mailbox_tree(path)

    def add_alias(self, alias: str, targets: Iterable[str]) -> tuple[str, list[str]]:
        key = self.canonical_alias(alias)
        canonical_targets = [self.canonical(t) for t in targets]
        if not canonical_targets:
            raise StoreError("an alias needs at least one target")
        domain = key.rsplit("@", 1)[1]
        if domain not in self.config.domains.local:
            raise StoreError(f"{key}: domain {domain} is not in domains.local")
        if key in canonical_targets:
            raise StoreError(f"{key}: an alias cannot point at itself")
        self.index.add_alias(key, canonical_targets)
        return key, canonical_targets

    def canonical_alias(self, alias: str) -> str:
        """An alias is a full address, or `@domain` for a catch-all."""
        if alias.startswith("@"):
            return "@" + parse_domain(alias[1:], alias)
        return self.canonical(alias)

    def delete_alias(self, alias: str) -> None:
        self.index.delete_alias(self.canonical_alias(alias))

    # -- resolution and authentication ------------------------------------------------------

    def resolve(self, recipient: str) -> Resolution:
        def find_mailbox(address: str) -> MailboxRef | None:
            row = self.index.get_mailbox(address)
            return MailboxRef(row.id, row.address, row.enabled) if row else None

        return resolve(
            recipient,
            local_domains=self.config.domains.local,
            delimiter=self.config.lmtp.recipient_delimiter,
            find_mailbox=find_mailbox,
            find_alias=self.index.alias_targets,
        )

    def login_row(self, address: str) -> MailboxRow | None:
        """The mailbox a login names, or None (also for an address that cannot exist)."""
        try:
            return self.index.get_mailbox(self.canonical(address))
        except AddressError:
            return None

    @staticmethod
    def check_login(row: MailboxRow | None, password: str) -> tuple[bool, str | None]:
        """(accepted, new hash to store or None): the password is right and the mailbox
        enabled; an old scheme is rehashed to argon2id. CPU only, no index: the servers run
        it off the index thread. Takes the same time whether or not the user exists."""
        ok = auth.verify_password(row.password_hash if row else None, password)
        if not ok or row is None or not row.enabled:
            return False, None
        if auth.needs_rehash(row.password_hash):
            return True, auth.hash_password(password)
        return True, None

    def over_quota(self, mailbox: MailboxRow, incoming: int = 0) -> bool:
        if mailbox.quota <= 0:
            return False
        _, used = self.index.usage(mailbox.id)
        if incoming == 0:
            return used >= mailbox.quota
        return used + incoming > mailbox.quota

    # -- message files ---------------------------------------------------------------------

    def folder_dir(self, mailbox: MailboxRow, folder: str, *, create: bool) -> Path:
        base = self.mailbox_dir(mailbox.address)
        path = maildir.folder_dir(base, folder)
        if create:
            maildir.check_no_links(self.mail_root, base)
            maildir.ensure_maildir(path, fsync=self.fsync, subfolder=path != base)
        return path

    def lock_mailbox(self, mailbox: MailboxRow) -> int | None:
        """The POP3 session lock of a mailbox (maildir.lock_mailbox), never through a link."""
        base = self.mailbox_dir(mailbox.address)
        maildir.check_no_links(self.mail_root, base)
        return maildir.lock_mailbox(base)

    def folder_exists(self, mailbox: MailboxRow, folder: str) -> bool:
        try:
            path = maildir.folder_dir(self.mailbox_dir(mailbox.address), folder)
        except maildir.FolderError:
            return False
        return (path / "cur").is_dir()

    def write_file(self, mailbox: MailboxRow, folder: str, prefix: bytes, body: maildir.Body,
                   flags: Iterable[str] = ()) -> maildir.StoredFile:
        folder = maildir.normal_folder(folder)
        target = self.folder_dir(mailbox, folder, create=True)
        stored = maildir.write_message(target, prefix, body, flags=flags, fsync=self.fsync)
        return dataclasses.replace(stored, folder=folder)

    def discard_file(self, mailbox: MailboxRow, stored: maildir.StoredFile) -> None:
        """Undo a write whose index row could not be recorded, so no half-delivery stays."""
        path = maildir.message_path(self.mailbox_dir(mailbox.address), stored.folder,
                                    stored.subdir, stored.filename)
        maildir.remove_messages([path], fsync=self.fsync)

    def message_path(self, mailbox: MailboxRow, row: MessageRow) -> Path:
        return maildir.message_path(self.mailbox_dir(mailbox.address), row.folder, row.subdir,
                                    row.filename)

    def mark_seen(self, mailbox: MailboxRow, row: MessageRow) -> MessageRow:
        # No fsync: a crash can at worst forget the Seen flag (the UIDL and the message are
        # unaffected), as with Dovecot's mail_fsync=optimized.
        new_name = maildir.mark_seen(self.mailbox_dir(mailbox.address), row.folder, row.subdir,
                                     row.filename, fsync=False)
        flags = new_name.split(":2,", 1)[1]
        self.index.update_message_file(row.id, "cur", new_name, flags)
        return MessageRow(**{**row.__dict__, "subdir": "cur", "filename": new_name,
                             "flags": flags})

    def delete_messages(self, mailbox: MailboxRow, rows: list[MessageRow]) -> list[MessageRow]:
        """Remove files, then rows; returns the rows whose file could not be removed (their
        rows stay, so index and Maildir keep agreeing)."""
        paths = {self.message_path(mailbox, row): row for row in rows}
        failed = set(maildir.remove_messages(paths, fsync=self.fsync))
        self.index.delete_messages(row.id for path, row in paths.items() if path not in failed)
        return [paths[p] for p in failed]
