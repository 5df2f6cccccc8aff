"""RFC 5183 environment: the environment test over the items the caller passes in.

lmtpd is a delivery agent: ``location`` is "MDA", ``phase`` is "during" and ``name`` is
"lmtpd" unless the caller says otherwise; an item nobody set has no value (the test fails).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..ast import Test
from ..runtime import Runtime
from ..spec import Extension, Spec
from .core import MATCHING

DEFAULTS: Mapping[str, str] = {"location": "MDA", "name": "lmtpd", "phase": "during"}


def _run(rt: Runtime, t: Test) -> bool:
    item = rt.s(t.positional[0])  # item names are case-sensitive, as in Pigeonhole
    value = rt.environment.get(item, DEFAULTS.get(item))
    values = [] if value is None else [value]
    return rt.match(t, values, rt.sl(t.positional[1]))


ENVIRONMENT = Extension(
    "environment",
    tests=(
        Spec("environment", "test", ext="environment", tags=MATCHING,
             positional=("string", "stringlist"), run=_run),
    ),
)
