"""What the line protocols users talk to (POP3, ManageSieve) share, without I/O: the events a
session state machine hands its server, why a login is refused, and the error for a server
that drives a session out of order."""

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
