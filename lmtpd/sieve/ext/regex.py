"""The regex match type (draft-ietf-sieve-regex): POSIX extended expressions, as glibc reads them.

Python's expression syntax is not POSIX: brackets read backslashes, ``{`` and ``(?`` mean
other things, and stacked quantifiers are errors. So a key is translated into an equivalent
Python expression, and what glibc's ``regcomp`` refuses is refused here too, at compile time
for constant keys. The expression runs on the ``regex`` package in its POSIX mode (the
leftmost longest match, as glibc finds it) and with a timeout: a backtracking matcher can
take exponential time on an unlucky expression and a hostile message, and the time a script
may take is bounded. ``[[.x.]]`` and ``[[=x=]]`` name single characters only (the C locale).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from functools import lru_cache

import regex

from ..match import CASEMAP, OCTET, Comparator, MatchError, MatchType
from ..spec import Extension
from ..variables import LimitExceeded

DUP_MAX = 0x7FFF  # RE_DUP_MAX: the largest bound of an interval
_CLASSES = {
    "alpha": "A-Za-z",
    "digit": "0-9",
    "alnum": "0-9A-Za-z",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": "!-/:-@\\[-`{-~",
    "print": " -~",
    "graph": "!-~",
    "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f",
}
_GNU_ESCAPES = {
    "w": r"\w", "W": r"\W", "s": r"\s", "S": r"\S", "b": r"\b", "B": r"\B",
    "<": r"\b(?=\w)", ">": r"\b(?<=\w)", "`": r"\A", "'": r"\Z",
}
_INTERVAL = re.compile(r"\{([0-9]*)(,([0-9]*))?\}")


class _Translator:
    """One pass over an ERE, writing the Python expression and tracking where atoms start."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.i = 0
        self.out: list[str] = []
        self.atom_start: int | None = None  # index in out of the last atom, None: none yet
        self.quantified = False  # the last atom already has a quantifier
        self.groups_open: list[int] = []
        self.groups_closed = 0

    def fail(self, message: str) -> MatchError:
        return MatchError(
            f"invalid regular expression '{self.src}' for regex match: {message}"
        )

    def run(self) -> str:
        while self.i < len(self.src):
            self.step(self.src[self.i])
        if self.groups_open:
            raise self.fail("unmatched ( or \\(")
        return "".join(self.out)

    def atom(self, text: str) -> None:
        self.begin_atom(len(self.out))
        self.out.append(text)
        self.i += 1

    def begin_atom(self, start: int | None) -> None:
        self.atom_start = start
        self.quantified = False

    def step(self, c: str) -> None:
        if c in "*+?{":
            self.quantifier(c)
        elif c == "(":
            self.groups_open.append(len(self.out))
            self.out.append("(")
            self.atom_start = None
            self.i += 1
        elif c == ")":
            if not self.groups_open:
                self.atom("\\)")  # an unmatched ")" is an ordinary character
                return
            start = self.groups_open.pop()
            self.groups_closed += 1
            self.out.append(")")
            self.begin_atom(start)
            self.i += 1
        elif c == "|":
            self.out.append("|")
            self.atom_start = None
            self.i += 1
        elif c == "^":
            self.out.append("^")
            self.atom_start = None
            self.i += 1
        elif c == "$":
            self.out.append(r"\Z")
            self.atom_start = None
            self.i += 1
        elif c == ".":
            self.atom(".")
        elif c == "[":
            self.begin_atom(len(self.out))
            self.out.append(self.bracket())
        elif c == "\\":
            self.escape()
        else:
            self.atom(re.escape(c))

    def escape(self) -> None:
        if self.i + 1 >= len(self.src):
            raise self.fail("trailing backslash")
        c = self.src[self.i + 1]
        self.i += 1
        if c.isdigit() and c != "0":
            if int(c) > self.groups_closed:
                raise self.fail("invalid back reference")
            self.atom(f"(?:\\{c})")
        elif c in _GNU_ESCAPES:
            self.begin_atom(None if c in "bB<>`'" else len(self.out))
            self.out.append(_GNU_ESCAPES[c])
            self.i += 1
        else:
            self.atom(re.escape(c))  # any other escaped character stands for itself

    def quantifier(self, c: str) -> None:
        if self.atom_start is None:
            raise self.fail("invalid preceding regular expression")
        if c == "{":
            m = _INTERVAL.match(self.src, self.i)
            if m is None:
                if re.match(r"\{[0-9]*(,[0-9]*)?\Z", self.src[self.i :]):
                    raise self.fail("unmatched \\{")
                raise self.fail("invalid content of \\{\\}")
            low = int(m.group(1) or 0)
            high = int(m.group(3)) if m.group(3) else None
            if not m.group(1) and not m.group(2):
                raise self.fail("invalid content of \\{\\}")
            if max(low, high or 0) > DUP_MAX:
                raise self.fail("regular expression too big")
            if high is not None and high < low:
                raise self.fail("invalid content of \\{\\}")
            text = f"{{{low}}}" if not m.group(2) else f"{{{low},{'' if high is None else high}}}"
            self.i = m.end()
        else:
            text = c
            self.i += 1
        if self.quantified:
            # a quantifier on a quantified atom applies to the whole: (?:a*)+, never the
            # possessive a*+ or the lazy a*? of Python
            previous = "".join(self.out[self.atom_start :])
            self.out[self.atom_start :] = [f"(?:{previous}){text}"]
        else:
            self.out.append(text)
        self.quantified = True

    def bracket(self) -> str:
        src, i = self.src, self.i + 1
        negate = i < len(src) and src[i] == "^"
        if negate:
            i += 1
        items: list[str] = []
        first = True
        while True:
            if i >= len(src):
                raise self.fail("unmatched [, [^, [:, [., or [=")
            c = src[i]
            if c == "]" and not first:
                break
            first = False
            if c == "[" and i + 1 < len(src) and src[i + 1] in ":.=":
                end = src.find(src[i + 1] + "]", i + 2)
                if end < 0:
                    raise self.fail("unmatched [, [^, [:, [., or [=")
                name = src[i + 2 : end]
                if src[i + 1] == ":":
                    if name not in _CLASSES:
                        raise self.fail("invalid character class name")
                    items.append(_CLASSES[name])
                    i = end + 2
                    if i + 1 < len(src) and src[i] == "-" and src[i + 1] != "]":
                        raise self.fail("invalid range end")
                    continue
                if len(name) != 1:
                    raise self.fail("invalid collation character")
                low, i = name, end + 2
            else:
                low, i = c, i + 1
            if i + 1 < len(src) and src[i] == "-" and src[i + 1] != "]":
                high, i = self._range_end(i + 1)
                if ord(high) < ord(low):
                    raise self.fail("invalid range end")
                items.append(f"{_lit(low)}-{_lit(high)}")
                if i < len(src) and src[i] == "-" and i + 1 < len(src) and src[i + 1] != "]":
                    raise self.fail("invalid range end")
            else:
                items.append(_lit(low))
        self.i = i + 1
        body = "".join(items)
        return f"[{'^' if negate else ''}{body}]"

    def _range_end(self, i: int) -> tuple[str, int]:
        src = self.src
        if src[i] == "[" and i + 1 < len(src) and src[i + 1] in ".=":
            end = src.find(src[i + 1] + "]", i + 2)
            if end < 0 or end - (i + 2) != 1:
                raise self.fail("invalid collation character")
            return src[i + 2], end + 2
        if src[i] == "[" and i + 1 < len(src) and src[i + 1] == ":":
            raise self.fail("invalid range end")
        return src[i], i + 1


def _lit(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else re.escape(c)


@lru_cache(maxsize=256)
def translate(source: str, icase: bool) -> regex.Pattern[str]:
    """The compiled form of a POSIX extended expression; MatchError for what glibc refuses."""
    t = _Translator(source)
    python = t.run()
    flags = regex.POSIX | regex.DOTALL | regex.ASCII | (regex.IGNORECASE if icase else 0)
    try:
        return regex.compile(python, flags)
    except regex.error as e:  # a construct the translation does not cover
        raise t.fail(f"not supported ({e})") from None


def _check(comparator: Comparator, _arg: object, keys: Sequence[str]) -> None:
    if comparator not in (OCTET, CASEMAP):
        raise MatchError("regex match type only supports i;octet and i;ascii-casemap comparators")
    for key in keys:
        translate(key, comparator is CASEMAP)


def _match(value: str, key: str, comparator: Comparator, _arg: object,
           deadline: float | None = None) -> list[str] | None:
    try:
        pattern = translate(key, comparator is CASEMAP)
    except MatchError:
        return None  # a key from a variable that does not compile never matches
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.001)
    try:
        m = pattern.search(value, timeout=timeout)
    except TimeoutError:
        raise LimitExceeded(f"regular expression '{key}' ran out of time") from None
    if m is None:
        return None
    return [m.group(0), *(g or "" for g in m.groups())]


REGEX_MATCH = MatchType("regex", _match, ext="regex", sets_variables=True, check=_check)
REGEX = Extension("regex")
