"""The POP3 wire in pieces: the events a session hands the server, reply lines, and a line
buffer with a bounded line length."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from lmtpd.textproto import NEED_DATA, Authenticate, NeedData, Send, StartTls, UsageError

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


# -- command lines --------------------------------------------------------------------------


class _TooLong:
    """Marker for a line that exceeded the limit (it was discarded up to its end)."""


TOO_LONG = _TooLong()


class LineBuffer:
    """Splits received bytes into lines. A line longer than the limit is discarded up to its
    LF and reported once as TOO_LONG, so memory stays bounded whatever the client sends."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear(self) -> None:
        self._buffer.clear()
        self._discarding = False

    def __len__(self) -> int:
        return len(self._buffer)

    def next_line(self, limit: int) -> bytes | _TooLong | None:
        """The next line without its line end; None when no complete line is buffered."""
        end = self._buffer.find(b"\n")
        if self._discarding:
            if end < 0:
                self._buffer.clear()
                return None
            del self._buffer[: end + 1]
            self._discarding = False
            return TOO_LONG
        if end < 0:
            if len(self._buffer) >= limit:
                # No LF within the limit: drop what we have and skip to the end of the line.
                self._buffer.clear()
                self._discarding = True
            return None
        if end + 1 > limit:
            del self._buffer[: end + 1]
            return TOO_LONG
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line
