"""The ManageSieve wire syntax (RFC 5804 §4): command lines with atoms, quoted strings and
literals split out of received bytes, and strings quoted for responses. No I/O.

A literal is `{n+}` (the form RFC 5804 defines for clients) or `{n}` (accepted as Dovecot
does; no continuation is sent for it, as ManageSieve has none). Memory stays bounded: a line
longer than `max_line` is dropped to its end and reported once, and a literal longer than
`max_literal` is read past without being kept and reported with its size (one absurdly
larger ends the session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmtpd.textproto import TOO_LONG, LineBuffer

CRLF = b"\r\n"
# A literal over the limit is read past and dropped; one over this many times the limit ends
# the connection instead.
SKIP_LIMIT = 16
_LITERAL_AT_END = re.compile(rb"\{(\d{1,19})(\+?)\}$")


@dataclass(frozen=True)
class Atom:
    """A bare word: a command name or a number."""

    text: str


@dataclass(frozen=True)
class String:
    """A quoted string or a literal, decoded as UTF-8."""

    text: str
    literal: bool = False


Token = Atom | String


@dataclass(frozen=True)
class Command:
    """One line of tokens: a command, or a client's SASL response (a lone string)."""

    tokens: tuple[Token, ...]

    @property
    def name(self) -> str:
        """The command name, upper-cased; "" when the line does not start with one."""
        first = self.tokens[0] if self.tokens else None
        return first.text.upper() if isinstance(first, Atom) else ""

    @property
    def args(self) -> tuple[Token, ...]:
        return self.tokens[1:]


@dataclass(frozen=True)
class SyntaxProblem:
    """A command that could not be read; `literal_size` is set when a literal over the
    limit was skipped (a script too large, for PUTSCRIPT)."""

    message: str
    name: str = ""
    literal_size: int | None = None
    fatal: bool = False  # the connection cannot go on (a literal too large to read past)


class _Skipped:
    """A literal that was read past, not kept."""

    def __init__(self, size: int) -> None:
        self.size = size


class CommandReader:
    """Received bytes in, whole commands out."""

    def __init__(self, max_line: int = 8192, max_literal: int = 1 << 20) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self._lines = LineBuffer()
        self._parts: list[bytes | bytearray | _Skipped] = []
        self._literal_left = 0  # octets of the current literal still to come
        self._kept = 0  # literal octets kept for the current command
        self._keep_literal = True
        self._line_size = 0  # line octets of the current command so far, literals not counted

    def feed(self, data: bytes) -> None:
        self._lines.feed(data)

    def clear(self) -> None:
        """Forget everything buffered (bytes received before a TLS handshake)."""
        self._lines.clear()
        self._reset()

    @property
    def in_literal(self) -> bool:
        return self._literal_left > 0

    def next_command(self) -> Command | SyntaxProblem | None:
        """The next whole command, a problem with one, or None when more bytes are needed."""
        while True:
            if self._literal_left:
                if not self._read_literal():
                    return None
                continue
            # A command's line segments (between its literals) share one limit.
            segment = self._lines.next_line(self.max_line - self._line_size)
            if segment is None:
                return None
            if segment is TOO_LONG:
                self._reset()
                return SyntaxProblem("Command line too long.")
            assert isinstance(segment, bytes)
            self._line_size += len(segment) + len(CRLF)
            literal = _LITERAL_AT_END.search(segment)
            if literal is None:
                self._parts.append(segment)
                return self._finish()
            self._parts.append(segment[: literal.start()])
            self._literal_left = int(literal.group(1))
            if self._literal_left > SKIP_LIMIT * self.max_literal:
                # Reading past it would take for ever: end the session, as Dovecot does.
                self.clear()
                return SyntaxProblem("Literal size too large.", fatal=True)
            # The literals of one command together stay within max_literal.
            self._keep_literal = self._kept + self._literal_left <= self.max_literal
            if self._keep_literal:
                self._kept += self._literal_left
            self._parts.append(bytearray() if self._keep_literal
                               else _Skipped(self._literal_left))

    def _read_literal(self) -> bool:
        """Move literal octets out of the buffer; True once the literal is complete."""
        taken = self._lines.take(self._literal_left)
        if self._keep_literal:
            current = self._parts[-1]
            assert isinstance(current, bytearray)
            current += taken
        self._literal_left -= len(taken)
        return self._literal_left == 0

    def _reset(self) -> None:
        self._parts = []
        self._kept = 0
        self._line_size = 0
        self._literal_left = 0

    def _finish(self) -> Command | SyntaxProblem:
        parts = self._parts
        self._reset()
        skipped = next((p.size for p in parts if isinstance(p, _Skipped)), None)
        try:
            tokens = _tokens(parts)
        except _BadSyntax as error:
            return SyntaxProblem(str(error), _name_of(parts), skipped)
        command = Command(tuple(tokens))
        if skipped is not None:
            return SyntaxProblem("Literal size too large.", command.name, skipped)
        return command


class _BadSyntax(Exception):
    pass


def _name_of(parts: list[bytes | bytearray | _Skipped]) -> str:
    first = parts[0] if parts else b""
    if isinstance(first, _Skipped):
        return ""
    return bytes(first).split(b" ", 1)[0].decode("ascii", "replace").upper()


def _tokens(parts: list[bytes | bytearray | _Skipped]) -> list[Token]:
    """Line segments alternate with literals: segment, literal, segment, ... segment."""
    tokens: list[Token] = []
    for number, part in enumerate(parts):
        if isinstance(part, _Skipped):
            tokens.append(String("", literal=True))
        elif number % 2:
            tokens.append(String(_utf8(bytes(part)), literal=True))
        else:
            tokens.extend(_segment_tokens(bytes(part), before_literal=number + 1 < len(parts)))
    return tokens


def _segment_tokens(segment: bytes, *, before_literal: bool) -> list[Token]:
    tokens: list[Token] = []
    position, end = 0, len(segment)
    while position < end:
        char = segment[position:position + 1]
        if char == b" ":
            position += 1
        elif char == b'"':
            text, position = _quoted(segment, position + 1)
            tokens.append(String(text))
        else:
            stop = segment.find(b" ", position)
            stop = end if stop < 0 else stop
            word = segment[position:stop]
            if any(c < 0x21 or c > 0x7E or c in b'"{}()%*\\' for c in word):
                raise _BadSyntax("Invalid characters in atom.")
            tokens.append(Atom(word.decode("ascii")))
            position = stop
    if before_literal and segment and not segment.endswith(b" ") and tokens:
        raise _BadSyntax("Missing space before literal.")
    return tokens


def _quoted(segment: bytes, position: int) -> tuple[str, int]:
    """A quoted string from just after its opening quote; (text, position after it)."""
    out = bytearray()
    while position < len(segment):
        char = segment[position]
        if char == 0x22:  # closing quote
            return _utf8(bytes(out)), position + 1
        if char == 0x5C:  # backslash: only \" and \\ are allowed (RFC 5804 §4)
            following = segment[position + 1:position + 2]
            if following not in (b'"', b"\\"):
                raise _BadSyntax("Invalid escape in quoted string.")
            out += following
            position += 2
            continue
        if char in (0, 0x0D, 0x0A):
            raise _BadSyntax("String contains invalid character.")
        out.append(char)
        position += 1
    raise _BadSyntax("Missing closing quote.")


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadSyntax("Invalid UTF-8 character in string.") from None


def quote(text: str) -> bytes:
    """A string for a response: quoted, or a literal when it holds a line break."""
    data = text.encode("utf-8")
    if b"\r" in data or b"\n" in data:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(text: str) -> bytes:
    """A server literal (RFC 5804 §4: `{n}` CRLF octets), as GETSCRIPT sends a script."""
    data = text.encode("utf-8")
    return b"{%d}\r\n" % len(data) + data
