"""Postfix's socketmap protocol (socketmap_table(5)), sans-I/O: bytes in, lookups out;
replies as bytes.

Every request and reply is a netstring (`<length>:<payload>,`). A request's payload is
`<map> <key>`; a reply's is `OK <value>`, `NOTFOUND `, `TEMP <reason>` or `PERM <reason>`.
One connection carries any number of requests, answered in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# A request is a map name and an address (at most 254 octets): anything much longer is not
# from Postfix, and is refused before it is buffered.
MAX_REQUEST = 4096
_MAX_DIGITS = len(str(MAX_REQUEST))


class Status(Enum):
    OK = "OK"
    NOTFOUND = "NOTFOUND"
    TEMP = "TEMP"
    PERM = "PERM"


@dataclass(frozen=True)
class Reply:
    status: Status
    text: str = ""

    def encode(self) -> bytes:
        return netstring(f"{self.status.value} {self.text}".encode("utf-8", "surrogateescape"))


NOTFOUND = Reply(Status.NOTFOUND)


@dataclass(frozen=True)
class Lookup:
    """A well-formed request."""

    map: str
    key: str


@dataclass(frozen=True)
class BadRequest:
    """A netstring whose payload is not `<map> <key>`: answered with PERM; the connection
    goes on."""

    reason: str


@dataclass(frozen=True)
class Broken:
    """Bytes that are not a netstring (or one over MAX_REQUEST): nothing after them can be
    framed, so the connection is answered with PERM and closed."""

    reason: str


Event = Lookup | BadRequest | Broken


def netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


class SocketmapReader:
    """Frames requests out of the bytes received."""

    def __init__(self, max_request: int = MAX_REQUEST) -> None:
        self.max_request = max_request
        self._buffer = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> list[Event]:
        """The requests completed by `data`, in order; after a Broken event, nothing more."""
        if self.broken:
            return []
        self._buffer += data
        events: list[Event] = []
        while self._buffer:
            event, used = self._next()
            if event is None:
                break
            del self._buffer[:used]
            events.append(event)
            if isinstance(event, Broken):
                self.broken = True
                self._buffer.clear()
                break
        return events

    def _next(self) -> tuple[Event | None, int]:
        """The first request in the buffer and its length; (None, 0) while incomplete."""
        buffer = self._buffer
        colon = buffer.find(b":", 0, _MAX_DIGITS + 1)
        if colon < 0:
            if len(buffer) > _MAX_DIGITS or not buffer.isdigit():
                return Broken("not a netstring: expected <length>:"), 0
            return None, 0
        digits = bytes(buffer[:colon])
        if not digits.isdigit():
            return Broken("not a netstring: expected <length>:"), 0
        length = int(digits)
        if length > self.max_request:
            return Broken(f"request of {length} bytes; at most {self.max_request}"), 0
        end = colon + 1 + length
        if len(buffer) <= end:
            return None, 0
        if buffer[end] != ord(","):
            return Broken("netstring not terminated by a comma"), 0
        return parse_request(bytes(buffer[colon + 1:end])), end + 1


def parse_request(payload: bytes) -> Lookup | BadRequest:
    text = payload.decode("utf-8", "surrogateescape")
    name, space, key = text.partition(" ")
    if not space or not name:
        return BadRequest("expected <map> <key>")
    return Lookup(name, key)
