"""Which header field values a header, address, exists or date test reads.

The message header by default; with ``:mime`` the MIME part(s) of RFC 5703; then ``:index``
(RFC 5260) keeps one of them.
"""

from __future__ import annotations

from ..ast import Test
from ..runtime import Runtime
from ..validator import Checker
from . import index, mime


def check(checker: Checker, t: Test) -> None:
    index.check(checker, t)
    mime.check(checker, t)


def values(rt: Runtime, t: Test, names: list[str], decoded: bool) -> list[str]:
    """``decoded``: RFC 2047 encoded words decoded (the header test); the address test
    parses the raw values."""
    if t.tags.get("mime"):
        found = mime.header_values(rt, t, names, decoded)
    elif decoded:
        found = [v for name in names for v in rt.msg.header(name)]
    else:
        found = [v for name in names for v in rt.msg.raw_header(name)]
    return index.select(found, t)
