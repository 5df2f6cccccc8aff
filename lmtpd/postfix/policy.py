"""Postfix's SMTPD policy delegation protocol (SMTPD_POLICY_README), sans-I/O: bytes in,
requests out; actions as bytes.

A request is `name=value` lines ended by an empty line; the answer is `action=<action>`
and an empty line. Postfix keeps the connection open and sends request after request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Postfix's requests are a few hundred octets (a long TLS client certificate subject makes
# them longer); these bounds keep a confused client from filling memory.
MAX_LINE = 8192
MAX_REQUEST = 65536
MAX_ATTRIBUTES = 100


@dataclass
class PolicyRequest:
    attributes: dict[str, str] = field(default_factory=dict)
    # Why the request cannot be answered (a line without "=", over a bound); "" when fine.
    problem: str = ""

    def get(self, name: str) -> str:
        return self.attributes.get(name, "")

    @property
    def size(self) -> int:
        """The `size` attribute (the SIZE= of MAIL FROM, or the message's size once known);
        0 when absent or not a number."""
        value = self.get("size").strip()
        return int(value) if value.isdigit() else 0


def encode_action(action: str) -> bytes:
    # One line: a line break inside would end the reply early and desynchronise Postfix.
    return f"action={' '.join(action.split())}\n\n".encode("utf-8", "surrogateescape")


class PolicyReader:
    """Collects attribute lines into requests."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._request = PolicyRequest()
        self._size = 0
        self._skipping_line = False  # inside a line over MAX_LINE: drop until its end

    def feed(self, data: bytes) -> list[PolicyRequest]:
        """The requests completed by `data`, in order."""
        self._buffer += data
        done: list[PolicyRequest] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._fault("attribute line too long")
                    self._skipping_line = True
                    self._buffer.clear()
                return done
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            if self._skipping_line:
                self._skipping_line = False
                continue
            finished = self._line(line.removesuffix(b"\r"))
            if finished is not None:
                done.append(finished)

    def _line(self, line: bytes) -> PolicyRequest | None:
        if not line:
            request, self._request, self._size = self._request, PolicyRequest(), 0
            if not request.attributes and not request.problem:
                request.problem = "empty request"
            return request
        self._size += len(line) + 1
        if self._size > MAX_REQUEST or len(self._request.attributes) >= MAX_ATTRIBUTES:
            self._fault("request too large")
            return None
        name, equals, value = line.decode("utf-8", "surrogateescape").partition("=")
        if not equals or not name:
            self._fault("expected name=value")
            return None
        self._request.attributes[name] = value
        return None

    def _fault(self, problem: str) -> None:
        if not self._request.problem:
            self._request.problem = problem
