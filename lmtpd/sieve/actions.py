"""Actions a script decides on, and the result of running one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Store:
    folder: str  # "INBOX" or as written in the script, e.g. "Lists/python"
    flags: tuple[str, ...] = ()  # IMAP names, e.g. ("\\Seen",)
    create: bool = False


@dataclass(frozen=True)
class Discard:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str
    extended: bool = False  # ereject: refuse at the protocol level


@dataclass(frozen=True)
class Redirect:
    address: str
    copy: bool = False


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


Action = Store | Discard | Reject | Redirect | Vacation


@dataclass
class SieveResult:
    actions: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # True when the script ended with its implicit keep still in force
    implicit_keep: bool = True


def action_to_json(action: Action) -> dict[str, Any]:
    if isinstance(action, Store):
        return {"type": "store", "folder": action.folder, "flags": list(action.flags)}
    if isinstance(action, Discard):
        return {"type": "discard"}
    if isinstance(action, Reject):
        return {"type": "reject", "reason": action.reason}
    if isinstance(action, Redirect):
        return {"type": "redirect", "address": action.address}
    return {"type": "vacation", "to": action.to, "subject": action.subject}


def actions_to_json(actions: list[Action]) -> dict[str, Any]:
    """The ``lmtpd sieve test --json`` document of SPEC section 8."""
    return {"actions": [action_to_json(a) for a in actions]}
