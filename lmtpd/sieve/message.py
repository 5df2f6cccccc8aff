"""The message as Sieve sees it: header fields (decoded on demand), size, body parts.

Only the header block is split at construction; the MIME structure is parsed the
first time a body or MIME test asks for it. The header is kept field by field, as written, so
an edited message (editheader) changes only the fields a script touched.
"""

from __future__ import annotations

import codecs
import email
import email.message
import email.policy
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(=\?)")


@dataclass(frozen=True)
class Envelope:
    sender: str  # "" for the null sender
    recipient: str  # as given at RCPT, e.g. "user+detail@domain"
    user_address: str = ""  # the mailbox's own address, e.g. "user@domain"


def _split_head(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(header block with its last line end, the empty line, body)."""
    if raw.startswith((b"\r\n", b"\n")):
        blank = b"\r\n" if raw.startswith(b"\r\n") else b"\n"
        return b"", blank, raw[len(blank) :]
    m = re.search(rb"\n(\r?\n)", raw)
    if not m:
        return raw, b"", b""
    return raw[: m.start() + 1], m.group(1), raw[m.end() :]


class HeaderField(NamedTuple):
    """One field of the header as it is in the message (or as editheader added it)."""

    name: str  # lower-cased; "" for a line that is not a header field
    value: str  # unfolded (line breaks removed), not decoded
    raw: bytes  # the field as written, folding and line end included


# a line and the continuation lines (starting with a blank) that fold into it
_FIELD = re.compile(rb"[^\n]*(?:\n[ \t][^\n]*)*\n?")


def _fields(head: bytes) -> list[HeaderField]:
    out: list[HeaderField] = []
    for m in _FIELD.finditer(head):
        raw = m.group()
        if not raw:
            continue
        name, sep, value = raw.decode("utf-8", "replace").partition(":")
        name = name.strip()
        if sep and name:
            # unfold: drop the line breaks only (RFC 5322 2.2.3)
            out.append(HeaderField(name.lower(), value.replace("\r\n", "").replace("\n", ""), raw))
        else:
            out.append(HeaderField("", "", raw))  # not a header field; Pigeonhole skips these
    return out


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; whitespace between two adjacent words is dropped."""
    if "=?" not in value:
        return value
    value = _BETWEEN_WORDS.sub(r"\1\2", value)

    def one(m: re.Match[str]) -> str:
        charset = m.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        try:
            codec = codecs.lookup(charset).name
        except LookupError:
            codec = "utf-8"  # unknown charset: the octets as they are (Pigeonhole)
        text = m.group(3)
        try:
            if m.group(2) in "bB":
                import base64

                data = base64.b64decode(text + "=" * (-len(text) % 4))
            else:
                data = _q_decode(text)
        except ValueError:
            return m.group(0)
        return data.decode(codec, "replace")

    return _ENCODED_WORD.sub(one, value)


def _q_decode(text: str) -> bytes:
    out = bytearray()
    i = 0
    raw = text.encode("ascii", "replace")
    while i < len(raw):
        c = raw[i]
        if c == 0x5F:  # "_" is a space in Q encoding
            out.append(0x20)
        elif c == 0x3D and i + 2 < len(raw) + 0 and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 2
        else:
            out.append(c)
        i += 1
    return bytes(out)


def _is_hex(b: bytes) -> bool:
    return len(b) == 2 and all(chr(c) in "0123456789abcdefABCDEF" for c in b)


@dataclass(frozen=True)
class MimePart:
    """One MIME part: its header fields (lower-cased name, unfolded value) and the index just
    past its last descendant in ``MessageContext.parts``."""

    headers: list[tuple[str, str]]
    end: int


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n", "", value)


@dataclass
class MessageContext:
    raw: bytes
    fields: list[HeaderField]
    body_raw: bytes
    blank: bytes = b"\n"  # the empty line between header and body, as in the message
    _decoded: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_bytes(cls, raw: bytes) -> MessageContext:
        head, blank, body = _split_head(raw)
        return cls(raw=raw, fields=_fields(head), body_raw=body, blank=blank or b"\n")

    def with_fields(self, fields: list[HeaderField]) -> MessageContext:
        """The same message with another header (editheader); the body is shared."""
        head = b"".join(f.raw for f in fields)
        raw = head + self.blank + self.body_raw
        return MessageContext(raw=raw, fields=fields, body_raw=self.body_raw, blank=self.blank)

    @property
    def crlf(self) -> bool:
        """Whether the message ends its lines with CRLF (new header fields do the same)."""
        return self.blank == b"\r\n"

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(f.name, f.value) for f in self.fields if f.name]

    @cached_property
    def size(self) -> int:
        # The octets as handed to us (CRLF from LMTP); Pigeonhole counts the same way
        return len(self.raw)

    def has_header(self, name: str) -> bool:
        name = name.lower()
        return any(f.name == name for f in self.fields)

    def raw_header(self, name: str) -> list[str]:
        """Unfolded values, leading and trailing whitespace removed, not decoded."""
        name = name.lower()
        return [f.value.strip(" \t\r\n") for f in self.fields if f.name == name]

    def header(self, name: str) -> list[str]:
        """Values for the header test: unfolded, trimmed, RFC 2047 decoded."""
        key = name.lower()
        cached = self._decoded.get(key)
        if cached is None:
            cached = [decode_words(v) for v in self.raw_header(key)]
            self._decoded[key] = cached
        return cached

    @cached_property
    def parsed(self) -> email.message.Message:
        return email.message_from_bytes(self.raw, policy=email.policy.compat32)

    @cached_property
    def parts(self) -> list[MimePart]:
        """The MIME tree in pre-order, the message itself first (its header as edited)."""
        out: list[MimePart | None] = []

        def walk(part: email.message.Message, root: bool) -> None:
            at = len(out)
            out.append(None)
            if part.is_multipart():
                for child in part.get_payload():
                    if isinstance(child, email.message.Message):
                        walk(child, False)
            headers = self.headers if root else [
                (name.lower(), _unfold(str(value))) for name, value in part.raw_items()
            ]
            out[at] = MimePart(headers, len(out))

        walk(self.parsed, True)
        return [p for p in out if p is not None]

    @property
    def body_crlf(self) -> str:
        return _crlf(self.body_raw.decode("utf-8", "replace"))


def _crlf(s: str) -> str:
    return re.sub(r"\r?\n", "\r\n", s)
