"""The message as Sieve sees it: header fields (decoded on demand), size, body parts.

Only the header block is split at construction; the MIME structure is parsed the
first time a body test asks for it.
"""

from __future__ import annotations

import codecs
import email
import email.message
import email.policy
import re
from dataclasses import dataclass, field
from functools import cached_property

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(=\?)")


@dataclass(frozen=True)
class Envelope:
    sender: str  # "" for the null sender
    recipient: str  # as given at RCPT, e.g. "user+detail@domain"
    user_address: str = ""  # the mailbox's own address, e.g. "user@domain"


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    m = re.search(rb"\r?\n\r?\n", raw)
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw[2 if raw.startswith(b"\r\n") else 1 :]
    if not m:
        return raw, b""
    return raw[: m.start()], raw[m.end() :]


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


@dataclass
class MessageContext:
    raw: bytes
    headers: list[tuple[str, str]]  # (lower-case name, unfolded raw value)
    body_raw: bytes
    _decoded: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_bytes(cls, raw: bytes) -> MessageContext:
        head, body = _split_head(raw)
        headers: list[tuple[str, str]] = []
        text = head.decode("utf-8", "replace")
        for line in re.split(r"\r?\n", text):
            if not line:
                continue
            if line[0] in " \t" and headers:
                name, value = headers[-1]
                headers[-1] = (name, value + line)  # unfold: drop the line break only
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue  # not a header field; Pigeonhole skips these too
            headers.append((name.strip().lower(), value))
        return cls(raw=raw, headers=headers, body_raw=body)

    @cached_property
    def size(self) -> int:
        # The octets as handed to us (CRLF from LMTP); Pigeonhole counts the same way
        return len(self.raw)

    def has_header(self, name: str) -> bool:
        name = name.lower()
        return any(h == name for h, _ in self.headers)

    def raw_header(self, name: str) -> list[str]:
        """Unfolded values, leading and trailing whitespace removed, not decoded."""
        name = name.lower()
        return [v.strip(" \t\r\n") for h, v in self.headers if h == name]

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

    @property
    def body_crlf(self) -> str:
        return _crlf(self.body_raw.decode("utf-8", "replace"))


def _crlf(s: str) -> str:
    return re.sub(r"\r?\n", "\r\n", s)
