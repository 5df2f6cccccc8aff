"""RFC 6609 include: include, return, and global (shared variables across included scripts).

Included scripts are found and compiled with the script that includes them (``compile.py``
follows the includes); running one here only switches to its compiled form.
"""

from __future__ import annotations

import contextlib
import re

from ..ast import Command
from ..runtime import ReturnScript, Runtime, SieveRuntimeError
from ..spec import Extension, Spec, TagDef
from ..validator import Checker

MAX_SCRIPT_NAME = 256  # characters (SIEVE_MAX_SCRIPT_NAME_LEN)
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def valid_script_name(name: str) -> bool:
    """Whether a script may be called ``name`` (RFC 5804 1.6, with Pigeonhole's extra rules:
    no '/', no control characters, no U+00FF, no line or paragraph separator)."""
    if not name or len(name) > MAX_SCRIPT_NAME:
        return False
    for ch in name:
        code = ord(ch)
        if code <= 0x1F or code == 0x7F or 0x80 <= code <= 0x9F:
            return False
        if ch in "/\u00ff\u2028\u2029":
            return False
    return True


def _check_include(checker: Checker, cmd: Command) -> None:
    name = cmd.positional[0]
    assert isinstance(name, str)
    if not checker.constant(name):
        raise checker.error(
            "the include command requires a constant string for its value argument", cmd
        )
    if not valid_script_name(name):
        raise checker.error(f"include: invalid script name '{name}'", cmd)
    if checker.include is not None:
        location = str(cmd.tags.get("location", "personal"))
        checker.include(checker, cmd, location, name, bool(cmd.tags.get("once")),
                        bool(cmd.tags.get("optional")))


def _run_include(rt: Runtime, cmd: Command) -> None:
    key = (str(cmd.tags.get("location", "personal")), str(cmd.positional[0]))
    script = rt.script.includes.get(key)
    if script is None:
        return  # an :optional script that does not exist
    ran = rt.state.setdefault("include", set())
    assert isinstance(ran, set)
    if key in ran and cmd.tags.get("once"):
        return
    ran.add(key)
    if key in rt.include_chain:
        raise SieveRuntimeError(f"include: circular include of script '{key[1]}'")
    with rt.running(script), contextlib.suppress(ReturnScript):
        rt.block(script.commands)


def _run_return(rt: Runtime, cmd: Command) -> None:
    raise ReturnScript


def _check_global(checker: Checker, cmd: Command) -> None:
    if not checker.has("variables"):
        raise checker.error("global command requires that variables extension is active", cmd)
    for name in cmd.positional[0]:  # type: ignore[union-attr]
        if not _VAR_NAME.match(name):
            raise checker.error(f"invalid variable identifier '{name}'", cmd)
        if name.lower() in checker.locals:
            raise checker.error(
                f"declaration of new global variable '{name}' conflicts with earlier local use",
                cmd,
            )
        checker.globals.add(name.lower())


INCLUDE = Extension(
    "include",
    commands=(
        Spec(
            "include", "command", ext="include",
            tags={
                "personal": TagDef(slot="location"),
                "global": TagDef(slot="location"),
                "once": TagDef(),
                "optional": TagDef(),
            },
            positional=("string",), check=_check_include, run=_run_include,
        ),
        Spec("return", "command", ext="include", run=_run_return),
        Spec("global", "command", ext="include", positional=("stringlist",),
             check=_check_global),
    ),
)
