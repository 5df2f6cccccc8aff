"""Comparators (RFC 4790: i;octet, i;ascii-casemap) and match types (:is :contains :matches)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(s: str, comparator: str) -> str:
    # i;ascii-casemap folds ASCII letters only; "É" and "é" stay different
    return s.translate(_ASCII_LOWER) if comparator == "i;ascii-casemap" else s


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
        if c == "*":
            out.append("*")
        elif c == "?":
            out.append("?")
        else:
            out.append((c,))
        i += 1
    return tuple(out)


def glob_match(pattern: str, value: str, comparator: str) -> list[str] | None:
    """Match a :matches pattern; returns the wildcard captures (for ${1}..) or None.

    Each '*' takes as little as possible, leftmost first (as Pigeonhole does). This
    is the classic wildcard algorithm that only ever backtracks to the most recent
    star, so it runs in O(len(pattern) * len(value)) even on hostile patterns.
    """
    toks = _glob_tokens(pattern)
    folded = fold(value, comparator)
    caps: dict[int, tuple[int, int]] = {}
    n, m = len(folded), len(toks)
    i = p = 0
    star_p = -1
    star_start = star_i = 0

    def lit(t: str | tuple[str]) -> str:
        return fold(t[0], comparator)  # type: ignore[index]

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
        elif isinstance(t, tuple) and lit(t) == folded[i]:
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


def match_one(value: str, key: str, match_type: str, comparator: str) -> list[str] | None:
    """None when no match; a list (the captures for :matches, else empty) when it matches."""
    if match_type == "is":
        return [] if fold(value, comparator) == fold(key, comparator) else None
    if match_type == "contains":
        return [] if fold(key, comparator) in fold(value, comparator) else None
    caps = glob_match(key, value, comparator)
    if caps is None:
        return None
    return [value, *caps]


def match_any(
    values: Iterable[str], keys: list[str], match_type: str, comparator: str
) -> tuple[bool, list[str] | None]:
    """Any value against any key; returns (matched, match variables for :matches)."""
    for value in values:
        for key in keys:
            caps = match_one(value, key, match_type, comparator)
            if caps is not None:
                return True, (caps if match_type == "matches" else None)
    return False, None
