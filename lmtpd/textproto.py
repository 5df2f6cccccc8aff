"""What the line protocols users talk to (POP3, ManageSieve) share, without I/O: the events a
session state machine hands its server, why a login is refused, the error for a server that
drives a session out of order, and a line buffer with a bounded line length."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class LoginRefusal(enum.Enum):
    """Why a login was refused, whatever the protocol."""

    INVALID = "invalid"  # wrong user or password, or a disabled mailbox
    LOCKED = "locked"  # too many failures: refused without checking the password
    TEMPORARY = "temporary"  # the index could not be read


class UsageError(RuntimeError):
    """The server drove the session out of order (a bug in the caller, never the client)."""


@dataclass(frozen=True)
class NeedData:
    """No complete command is buffered: read more and call `receive_data`."""


@dataclass(frozen=True)
class Send:
    """Write `data`; when `close` is set, close the connection afterwards."""

    data: bytes
    close: bool = False


@dataclass(frozen=True)
class Authenticate:
    """Check these credentials, then call `login_succeeded` or `login_failed`. An empty
    password never matches (it stands for one that could not be decoded)."""

    username: str
    # Kept out of repr() so a password can never reach a log line or a test report.
    password: str = field(default="", repr=False)
    mechanism: str = "PLAIN"


@dataclass(frozen=True)
class StartTls:
    """Write `reply`, drop any bytes already received (they came before the handshake and
    could be injected), run the TLS handshake, then call `tls_started` (or end the
    connection)."""

    reply: bytes


NEED_DATA = NeedData()


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

    def take(self, limit: int) -> bytes:
        """Up to `limit` buffered octets as they came, line ends or not (a literal's)."""
        taken = bytes(self._buffer[:limit])
        del self._buffer[:limit]
        return taken

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
