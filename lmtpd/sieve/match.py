"""Comparators (RFC 4790) and the match types of RFC 5228 (:is :contains :matches).

Match types added by extensions (relational's :count and :value, regex) are ``MatchType``
values of the same shape, defined in their extension modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LEADING_DIGITS = re.compile(r"[0-9]*")


def _octet(s: str) -> str:
    return s


def _casemap(s: str) -> str:
    # i;ascii-casemap folds ASCII letters only; "É" and "é" stay different
    return s.translate(_ASCII_LOWER)


def _numeric_value(s: str) -> float:
    """RFC 4790 9.1: the number in the leading digits; no leading digit is positive infinity."""
    digits = _LEADING_DIGITS.match(s)
    assert digits is not None
    return int(digits.group(0)) if digits.group(0) else float("inf")


def _cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


@dataclass(frozen=True)
class Comparator:
    name: str
    fold: Callable[[str], str]
    substring: bool  # supports :contains and :matches

    def compare(self, value: str, key: str) -> int:
        if self.name == "i;ascii-numeric":
            return _cmp(_numeric_value(value), _numeric_value(key))
        # code point order of str is the octet order of its UTF-8 form
        return _cmp(self.fold(value), self.fold(key))


OCTET = Comparator("i;octet", _octet, substring=True)
CASEMAP = Comparator("i;ascii-casemap", _casemap, substring=True)
NUMERIC = Comparator("i;ascii-numeric", _octet, substring=False)
COMPARATORS = {c.name: c for c in (OCTET, CASEMAP, NUMERIC)}
# i;octet and i;ascii-casemap need no require (RFC 5228 2.7.3)
BUILTIN_COMPARATORS = frozenset({"i;octet", "i;ascii-casemap"})


class MatchError(ValueError):
    """A key a match type cannot use (an invalid regular expression, a bad operator)."""


# match_one(value, key, comparator, argument, deadline); deadline: time.monotonic() by which
# the run must end (a match type that may run long checks it)
MatchOne = Callable[[str, str, Comparator, object, "float | None"], "list[str] | None"]


@dataclass(frozen=True)
class MatchType:
    """``match_one(value, key, comparator, argument, deadline)`` returns None for no match, or the
    match values (``${0}``, ``${1}``, ... for :matches and :regex, else an empty list).

    ``count`` match types see the number of values instead of each value (RFC 5231 :count).
    ``check(comparator, argument, constant_keys)`` refuses at compile time what cannot work.
    """

    name: str
    match_one: MatchOne
    ext: str | None = None
    argument: bool = False  # takes a relational operator (:count "gt")
    substring: bool = False  # needs a comparator that can match substrings
    sets_variables: bool = False
    count: bool = False
    check: Callable[[Comparator, object, Sequence[str]], None] | None = None


@lru_cache(maxsize=512)
def _glob_tokens(pattern: str) -> tuple[str | tuple[str], ...]:
    """'*' and '?' are wildcards, a literal character is a 1-tuple; backslash escapes."""
    out: list[str | tuple[str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append((pattern[i + 1],))
            i += 2
            continue
        if c in "*?":
            out.append(c)
        else:
            out.append((c,))
        i += 1
    return tuple(out)


def glob_match(pattern: str, value: str, fold: Callable[[str], str]) -> list[str] | None:
    """Match a :matches pattern; returns the wildcard captures (for ${1}..) or None.

    Each '*' takes as little as possible, leftmost first (as Pigeonhole does). This
    is the classic wildcard algorithm that only ever backtracks to the most recent
    star, so it runs in O(len(pattern) * len(value)) even on hostile patterns.
    """
    toks = _glob_tokens(pattern)
    folded = fold(value)
    caps: dict[int, tuple[int, int]] = {}
    n, m = len(folded), len(toks)
    i = p = 0
    star_p = -1
    star_start = star_i = 0
    while i < n:
        t = toks[p] if p < m else None
        if t == "?":
            caps[p] = (i, i + 1)
            p += 1
            i += 1
        elif t == "*":
            star_p, star_start, star_i = p, i, i
            caps[p] = (i, i)
            p += 1
        elif isinstance(t, tuple) and fold(t[0]) == folded[i]:
            p += 1
            i += 1
        elif star_p >= 0:
            star_i += 1
            i = star_i
            p = star_p + 1
            caps[star_p] = (star_start, star_i)
        else:
            return None
    while p < m and toks[p] == "*":
        caps[p] = (n, n)
        p += 1
    if p != m:
        return None
    return [value[a:b] for _, (a, b) in sorted(caps.items())]


def _is(value: str, key: str, comparator: Comparator, _arg: object,
        _deadline: float | None = None) -> list[str] | None:
    if not value:
        return [] if not key else None  # Pigeonhole: an empty value is only ever ""
    return [] if comparator.compare(value, key) == 0 else None


def _contains(value: str, key: str, comparator: Comparator, _arg: object,
              _deadline: float | None = None) -> list[str] | None:
    return [] if comparator.fold(key) in comparator.fold(value) else None


def _matches(value: str, key: str, comparator: Comparator, _arg: object,
             _deadline: float | None = None) -> list[str] | None:
    caps = glob_match(key, value, comparator.fold)
    return None if caps is None else [value, *caps]


IS = MatchType("is", _is)
CONTAINS = MatchType("contains", _contains, substring=True)
MATCHES = MatchType("matches", _matches, substring=True, sets_variables=True)
BASE_MATCH_TYPES = (IS, CONTAINS, MATCHES)


def match_any(
    values: Sequence[str],
    keys: Sequence[str],
    match_type: MatchType,
    comparator: Comparator,
    argument: object = None,
    deadline: float | None = None,
) -> tuple[bool, list[str] | None]:
    """Any value against any key; returns (matched, match values when the type sets them)."""
    if match_type.count:
        counted = str(len(values))
        return any(match_type.match_one(counted, k, comparator, argument, deadline) is not None
                   for k in keys), None
    for value in values:
        for key in keys:
            caps = match_type.match_one(value, key, comparator, argument, deadline)
            if caps is not None:
                return True, (caps if match_type.sets_variables else None)
    return False, None
