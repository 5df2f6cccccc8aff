"""RFC 5229 variables: the set command and the string test (expansion lives in variables.py)."""

from __future__ import annotations

import re

from ..ast import Command, Test
from ..runtime import Runtime
from ..spec import Extension, Spec, TagDef
from ..validator import Checker
from ..variables import SET_MODIFIERS, apply_modifiers
from .core import MATCHING

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_GLOBAL_NAME = re.compile(r"global\.[A-Za-z_][A-Za-z0-9_]*\Z", re.IGNORECASE)


def _check_set(checker: Checker, cmd: Command) -> None:
    name = cmd.positional[0]
    assert isinstance(name, str)
    if _GLOBAL_NAME.match(name) and checker.has("include"):
        return  # RFC 6609 5: the "global" namespace
    if not _VAR_NAME.match(name):
        raise checker.error(f"set: invalid variable name '{name}'", cmd)
    levels = [SET_MODIFIERS[t] for t in cmd.tags]
    if len(levels) != len(set(levels)):
        raise checker.error("set: two modifiers of the same precedence", cmd)
    if name.lower() not in checker.globals:
        checker.locals.add(name.lower())


def _run_set(rt: Runtime, cmd: Command) -> None:
    assert rt.vars is not None
    value = apply_modifiers(rt.s(cmd.positional[1]), list(cmd.tags))
    rt.vars.set(str(cmd.positional[0]), value)


def _run_string(rt: Runtime, t: Test) -> bool:
    values = rt.sl(t.positional[0])
    match = t.tags.get("match")
    if isinstance(match, tuple) and match[0] == "count":
        values = [v for v in values if v]  # RFC 5229 5: :count skips empty strings
    return rt.match(t, values, rt.sl(t.positional[1]))


VARIABLES = Extension(
    "variables",
    commands=(
        Spec("set", "command", ext="variables",
             tags={name: TagDef() for name in SET_MODIFIERS},
             positional=("string", "string"), check=_check_set, run=_run_set),
    ),
    tests=(
        Spec("string", "test", ext="variables", tags=MATCHING,
             positional=("stringlist", "stringlist"), run=_run_string),
    ),
)
