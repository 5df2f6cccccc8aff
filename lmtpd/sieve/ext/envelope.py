"""RFC 5228 5.4 envelope test (and RFC 5233 subaddress, whose :user and :detail it shares)."""

from __future__ import annotations

from ..addresses import split_address
from ..ast import Test
from ..runtime import Runtime
from ..spec import Extension, Spec
from ..validator import Checker
from .core import ADDRESS_PART, MATCHING, address_part


def _check(checker: Checker, t: Test) -> None:
    for part in t.positional[0]:  # type: ignore[union-attr]
        if checker.constant(part) and part.lower() not in ("from", "to"):
            raise checker.error(f"specified envelope part '{part}' is not supported", t)


def _values(rt: Runtime, t: Test) -> list[str]:
    part = str(t.tags.get("part", "all"))
    out: list[str] = []
    for which in rt.sl(t.positional[0]):
        which = which.lower()
        if which == "from":
            raw = rt.env.sender.strip().strip("<>")
        elif which == "to":
            raw = rt.env.recipient.strip().strip("<>")
        else:
            continue
        if not raw:
            # the null sender: only :all sees it, as the empty string
            if part == "all":
                out.append("")
            continue
        addr = split_address(raw)
        if addr is None:
            if part == "all":
                out.append(raw)
            continue
        value = address_part(addr, part)
        if value is not None:
            out.append(value)
    return out


def _run(rt: Runtime, t: Test) -> bool:
    return rt.match(t, _values(rt, t), rt.sl(t.positional[1]))


ENVELOPE = Extension(
    "envelope",
    tests=(
        Spec("envelope", "test", ext="envelope", tags={**MATCHING, **ADDRESS_PART},
             positional=("stringlist", "stringlist"), check=_check, run=_run),
    ),
)
SUBADDRESS = Extension("subaddress")
