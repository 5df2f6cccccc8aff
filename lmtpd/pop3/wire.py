"""The POP3 wire in pieces: the events a session hands the server and its reply lines."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from lmtpd.textproto import (
    NEED_DATA,
    TOO_LONG,
    Authenticate,
    LineBuffer,
    NeedData,
    Send,
    StartTls,
    UsageError,
)

__all__ = ["CRLF", "NEED_DATA", "TOO_LONG", "Authenticate", "Event", "LineBuffer",
           "LoginFailure", "MessageInfo", "NeedData", "Retrieve", "Send", "StartTls", "State",
           "Update", "UsageError", "err", "multiline", "ok"]

CRLF = b"\r\n"


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"
    CLOSED = "CLOSED"


class LoginFailure(enum.Enum):
    """Why the server refused a login, each with its RFC 2449 response code."""

    INVALID = "invalid"  # wrong user or password, or a disabled mailbox
    LOCKED = "locked"  # too many failures: throttled without checking the password
    IN_USE = "in-use"  # another session holds the mailbox
    TEMPORARY = "temporary"  # the index could not be read


# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retrieve:
    """Stream message `number` (1-based): write `status`, the message through a
    `MessageEncoder(body_lines)`, then its `finish()`. If the message cannot be opened, send
    `message_unavailable()` instead. `body_lines` is None for RETR, the line count for TOP."""

    number: int
    body_lines: int | None
    status: bytes


@dataclass(frozen=True)
class Update:
    """QUIT in TRANSACTION: delete the messages `numbers` durably, then call
    `update_finished`."""

    numbers: tuple[int, ...]


Event = NeedData | Send | Authenticate | StartTls | Retrieve | Update


@dataclass(frozen=True)
class MessageInfo:
    """What the session needs of one message of the maildrop snapshot."""

    uidl: str
    size: int  # octets RETR sends: CRLF line ends, before dot-stuffing


def ok(text: str = "") -> bytes:
    return (b"+OK " + text.encode() if text else b"+OK") + CRLF


def err(text: str) -> bytes:
    return b"-ERR " + text.encode() + CRLF


def multiline(first: bytes, lines: Sequence[str]) -> bytes:
    """A +OK line, then `lines` dot-stuffed, then the terminating dot."""
    body = "".join(("." + line if line.startswith(".") else line) + "\r\n" for line in lines)
    return first + body.encode() + b".\r\n"
