"""The plain records the index hands out, and the errors it raises."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class IndexFailure(Exception):
    """Base for index failures that callers translate into user-facing errors."""


class DuplicateError(IndexFailure):
    pass


class NotFoundError(IndexFailure):
    pass


class ActiveScriptError(IndexFailure):
    """The active Sieve script may not be deleted this way."""


class ScriptCountError(IndexFailure):
    """A new script would take the mailbox past its number of scripts."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


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


@dataclass(frozen=True)
class ScriptRow:
    """One named Sieve script of a mailbox; `text` is "" when only the list was asked for."""

    name: str
    active: bool
    bytes: int
    updated: float
    text: str = ""


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


MAILBOX_COLUMNS = "id, address, domain, password_hash, quota, enabled, created"
MESSAGE_COLUMNS = ("id, mailbox_id, folder, subdir, filename, uidl, size, crlf_size, received, "
                   "message_id, from_addr, subject, flags")


def mailbox_row(row: tuple) -> MailboxRow:
    return MailboxRow(row[0], row[1], row[2], row[3] or "", row[4], bool(row[5]), row[6])


def message_row(row: tuple) -> MessageRow:
    return MessageRow(*row)
