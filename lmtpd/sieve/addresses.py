"""RFC 5322 address-list parsing for the address test.

Real-world headers carry groups, comments, quoted display names and garbage. The
stdlib parsers either accept too much (``getaddresses`` turns garbage into
addresses) or raise on the first defect, so this is a small strict parser; when it
fails, the caller falls back to the raw header value, as Pigeonhole does.
"""

from __future__ import annotations

from dataclasses import dataclass

_SPECIALS = set('()<>[]:;@\\,"')


@dataclass(frozen=True)
class Address:
    localpart: str
    domain: str

    def __str__(self) -> str:
        return f"{self.localpart}@{self.domain}"


class _Bad(Exception):
    pass


def _tokenize(s: str) -> list[tuple[str, str]]:
    """Tokens as (kind, text): kinds atom, qstring, dliteral, or the special itself."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            depth = 0
            while i < n:
                if s[i] == "\\":
                    i += 2
                    continue
                if s[i] == "(":
                    depth += 1
                elif s[i] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            if i >= n:
                raise _Bad("unterminated comment")
            i += 1
        elif c == '"':
            i += 1
            buf: list[str] = []
            while i < n and s[i] != '"':
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(s[i])
                i += 1
            if i >= n:
                raise _Bad("unterminated quoted string")
            i += 1
            out.append(("qstring", "".join(buf)))
        elif c == "[":
            j = s.find("]", i)
            if j < 0:
                raise _Bad("unterminated domain literal")
            out.append(("dliteral", s[i : j + 1]))
            i = j + 1
        elif c in _SPECIALS:
            if c in ")]\\":
                raise _Bad(f"unexpected {c!r}")
            out.append((c, c))
            i += 1
        else:
            j = i
            while j < n and s[j] not in _SPECIALS and s[j] not in " \t\r\n":
                j += 1
            out.append(("atom", s[i:j]))
            i = j
    return out


class _Parser:
    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        t = self.toks[self.i]
        self.i += 1
        return t

    def address_list(self) -> list[Address]:
        out: list[Address] = []
        while self.peek() is not None:
            if self.peek() == ",":
                self.take()  # empty list element, tolerated as in RFC 5322 obs-addr-list
                continue
            start = self.i
            try:
                found = self.address(in_group=False)
                if self.peek() not in (None, ","):
                    raise _Bad("expected ','")
                out.extend(found)
            except _Bad:
                # like Pigeonhole, skip a broken element and keep the rest of the list
                self.i = start
                while self.peek() not in (None, ","):
                    self.take()
        return out

    def words(self) -> list[str]:
        words: list[str] = []
        while self.peek() in ("atom", "qstring"):
            words.append(self.take()[1])
        return words

    def address(self, in_group: bool) -> list[Address]:
        words = self.words()
        nxt = self.peek()
        if nxt == "<":
            self.take()
            addr = self.angle_addr()
            return [addr]
        if nxt == ":" and not in_group:
            if not words:
                raise _Bad("group without a name")
            self.take()
            members: list[Address] = []
            while self.peek() not in (";", None):
                if self.peek() == ",":
                    self.take()
                    continue
                members.extend(self.address(in_group=True))
            if self.peek() != ";":
                raise _Bad("unterminated group")
            self.take()
            return members
        if nxt == "@":
            if len(words) != 1:
                raise _Bad("bad local part")
            self.take()
            return [Address(words[0], self.domain())]
        raise _Bad("not an address")

    def angle_addr(self) -> Address:
        # obsolete source route: <@a,@b:user@dom>
        if self.peek() == "@":
            while self.peek() in ("@", ",", "atom"):
                self.take()
            if self.peek() != ":":
                raise _Bad("bad route")
            self.take()
        words = self.words()
        if len(words) != 1 or self.peek() != "@":
            raise _Bad("bad addr-spec")
        self.take()
        dom = self.domain()
        if self.peek() != ">":
            raise _Bad("expected '>'")
        self.take()
        return Address(words[0], dom)

    def domain(self) -> str:
        kind = self.peek()
        if kind not in ("atom", "dliteral"):
            raise _Bad("missing domain")
        return self.take()[1]


def parse_address_list(value: str) -> list[Address] | None:
    """The valid addresses in a header value (broken elements skipped); None when the
    value cannot even be tokenized."""
    try:
        toks = _tokenize(value)
        addrs = _Parser(toks).address_list()
    except (_Bad, IndexError):
        return None
    return [
        a
        for a in addrs
        if a.localpart and a.domain and not a.domain.startswith(".") and ".." not in a.domain
    ]


def split_address(addr: str) -> Address | None:
    """An envelope address ("user@domain", maybe in angle brackets) split at the last '@'."""
    addr = addr.strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1]
    local, sep, domain = addr.rpartition("@")
    if not sep or not local or not domain:
        return None
    return Address(local, domain)
