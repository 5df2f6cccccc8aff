"""The actions a script decides on, each described once: its data, its words and its JSON.

The interpreter only decides; delivery carries the actions out. ``FileInto`` and ``Redirect``
carry ``message`` when editheader changed the message before the action was taken: that is
the copy to store or send (as in Pigeonhole, an action sees the message as it was then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True)
class FileInto:
    """Store the message: ``keep`` and the implicit keep are a FileInto of ``INBOX``."""

    folder: str  # "INBOX" or as written in the script, e.g. "Lists/python"
    flags: tuple[str, ...] = ()  # IMAP names, e.g. ("\\Seen",)
    create: bool = False
    message: bytes | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        flags = f" flags {' '.join(self.flags)}" if self.flags else ""
        return f"store into {self.folder}{flags}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "store", "folder": self.folder, "flags": list(self.flags)}


@dataclass(frozen=True)
class Discard:
    def describe(self) -> str:
        return "discard"

    def to_json(self) -> dict[str, Any]:
        return {"type": "discard"}


@dataclass(frozen=True)
class Reject:
    reason: str
    extended: bool = False  # ereject: refuse at the protocol level

    def describe(self) -> str:
        return f"reject: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "reject", "reason": self.reason}


@dataclass(frozen=True)
class Redirect:
    address: str
    copy: bool = False
    message: bytes | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return f"redirect to {self.address}{' (copy)' if self.copy else ''}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "redirect", "address": self.address}


@dataclass(frozen=True)
class Vacation:
    to: str  # the envelope sender being answered
    subject: str
    body: str
    from_: str = ""  # "" means the user's own address
    mime: bool = False  # body is a MIME entity, headers included
    handle: str = ""
    days: int = 7
    addresses: tuple[str, ...] = ()

    @property
    def seconds(self) -> int:
        return self.days * 86400

    def describe(self) -> str:
        return f"vacation reply to {self.to}: {self.subject}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "vacation", "to": self.to, "subject": self.subject}


Action = FileInto | Discard | Reject | Redirect | Vacation


class DuplicateMark(NamedTuple):
    """A value the duplicate test saw, to remember once the message is delivered (RFC 7352).

    ``key`` is a digest of the handle and the value; the caller scopes it to the mailbox and
    keeps it for ``seconds`` from now, replacing the expiry of a mark already there (only a
    test with ``:last`` returns a mark for a value already seen). ``handle`` and ``last`` are
    for display.
    """

    key: str
    seconds: int
    handle: str | None = None
    last: bool = False


@dataclass
class SieveResult:
    actions: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # True when the script ended with its implicit keep still in force
    implicit_keep: bool = True
    # duplicate test: marks to store after a successful delivery; a dry run ignores them
    duplicate_marks: list[DuplicateMark] = field(default_factory=list)
    # editheader: the message as the script left it (None when unchanged); the implicit keep
    # stores this copy, explicit actions carry their own in ``message``
    edited_message: bytes | None = None
    warnings: list[str] = field(default_factory=list)


def action_to_json(action: Action) -> dict[str, Any]:
    return action.to_json()


def actions_to_json(actions: list[Action]) -> dict[str, Any]:
    """The ``lmtpd sieve test --json`` document."""
    return {"actions": [a.to_json() for a in actions]}
