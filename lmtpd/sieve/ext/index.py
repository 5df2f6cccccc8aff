"""RFC 5260 index: ``:index N`` and ``:last`` pick one header field for header, address, date."""

from __future__ import annotations

from ..ast import Test
from ..spec import Extension, TagDef
from ..validator import Checker

INDEX_TAGS = {"index": TagDef("number", ext="index"), "last": TagDef(ext="index")}


def check(checker: Checker, t: Test) -> None:
    if "last" in t.tags and "index" not in t.tags:
        raise checker.error(
            f"the :last tag for the {t.name} test cannot be specified without the :index tag", t
        )
    if t.tags.get("index") == 0:
        raise checker.error(f"the :index tag for the {t.name} test cannot be zero", t)


def select(values: list[str], t: Test) -> list[str]:
    """The field at :index (counted from 1, from the end with :last), or all of them.

    Fields are numbered across every header name the test lists, in the order read."""
    index = t.tags.get("index")
    if not isinstance(index, int):
        return values
    position = len(values) - index if t.tags.get("last") else index - 1
    return [values[position]] if 0 <= position < len(values) else []


INDEX = Extension("index")
