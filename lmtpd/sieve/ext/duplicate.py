"""RFC 7352 duplicate: has this message (or a value from it) been seen before?

The test only asks: ``Runtime.seen(key)`` is the caller's read-only view of the mailbox's
memory. What to remember is returned as ``DuplicateMark``s, which the caller stores once
the message is delivered (a dry run drops them), as Pigeonhole marks only after success.
"""

from __future__ import annotations

import hashlib
import json
import re

from ..actions import DuplicateMark
from ..ast import Test
from ..runtime import Runtime
from ..spec import Extension, Spec, TagDef
from ..validator import Checker
from .core import check_header_names

_MSGID = re.compile(r"<[^<>]*>")


def duplicate_key(handle: str | None, value: str, last: bool) -> str:
    """A stable digest of what a duplicate test compares (tests with and without :last are
    remembered apart, as in Pigeonhole)."""
    text = json.dumps(["last" if last else "first", handle, value], ensure_ascii=False)
    return hashlib.sha256(f"lmtpd duplicate {text}".encode()).hexdigest()


def _check(checker: Checker, t: Test) -> None:
    if "header" in t.tags and "uniqueid" in t.tags:
        raise checker.error(
            "conflicting :header and :uniqueid arguments specified for the duplicate test", t
        )
    if "header" in t.tags:
        check_header_names(checker, t, [t.tags["header"]])
    seconds = t.tags.get("seconds")
    if isinstance(seconds, int) and seconds > checker.limits.duplicate_max_seconds:
        checker.warn(f"specified :seconds value '{seconds}' is over the maximum", t)


def _value(rt: Runtime, t: Test) -> str | None:
    if "uniqueid" in t.tags:
        return rt.s(t.tags["uniqueid"])
    if "header" in t.tags:
        found = rt.msg.header(rt.s(t.tags["header"]))
        return found[0] if found else None
    for raw in rt.msg.raw_header("message-id"):
        m = _MSGID.search(raw)
        if m:
            return m.group(0)
    return None


def _run(rt: Runtime, t: Test) -> bool:
    value = _value(rt, t)
    if value is None:
        return False
    handle = rt.s(t.tags["handle"]) if "handle" in t.tags else None
    last = bool(t.tags.get("last"))
    key = duplicate_key(handle, value, last)
    answers = rt.state.setdefault("duplicate", {})
    assert isinstance(answers, dict)
    if key in answers:
        return bool(answers[key])  # asked before in this run: same answer, no second mark
    duplicate = rt.seen(key) or (last and rt.seen(duplicate_key(handle, value, False)))
    seconds = t.tags.get("seconds", rt.limits.duplicate_default_seconds)
    assert isinstance(seconds, int)
    seconds = min(seconds, rt.limits.duplicate_max_seconds)
    if not duplicate or last:
        rt.duplicate_marks.append(DuplicateMark(key, seconds, handle, last))
    answers[key] = duplicate
    return duplicate


DUPLICATE = Extension(
    "duplicate",
    tests=(
        Spec(
            "duplicate", "test", ext="duplicate",
            tags={
                "header": TagDef("string"),
                "uniqueid": TagDef("string"),
                "handle": TagDef("string"),
                "seconds": TagDef("number"),
                "last": TagDef(),
            },
            check=_check, run=_run,
        ),
    ),
)
