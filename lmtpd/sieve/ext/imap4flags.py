"""RFC 5232 imap4flags: setflag, addflag, removeflag, hasflag, and the internal flag variable."""

from __future__ import annotations

import re

from ..ast import Command, Test
from ..runtime import Runtime
from ..spec import Extension, Spec
from ..validator import Checker
from .core import MATCHING, flag_list

VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_command(checker: Checker, cmd: Command) -> None:
    if len(cmd.positional) == 2:
        name = cmd.positional[0]
        assert isinstance(name, str)
        if not VAR_NAME.match(name):
            raise checker.error(f"{cmd.name}: invalid variable name '{name}'", cmd)


def _check_hasflag(checker: Checker, t: Test) -> None:
    if len(t.positional) == 2:
        for name in t.positional[0]:  # type: ignore[union-attr]
            if not VAR_NAME.match(name):
                raise checker.error(f"hasflag: invalid variable name '{name}'", t)


def _run_flag(rt: Runtime, cmd: Command) -> None:
    pos = cmd.positional
    if len(pos) == 2:
        assert rt.vars is not None
        varname: str | None = str(pos[0])
        current = flag_list(rt.vars.get(str(pos[0])).split())
    else:
        varname = None
        current = rt.flags
    given = flag_list(rt.sl(pos[-1]))
    if cmd.name == "setflag":
        result = given
    elif cmd.name == "addflag":
        lowered = {f.lower() for f in current}
        result = flag_list(list(current) + [f for f in given if f.lower() not in lowered])
    else:
        drop = {f.lower() for f in given}
        result = [f for f in current if f.lower() not in drop]
    if varname is None:
        rt.flags = result
    else:
        assert rt.vars is not None
        rt.vars.set(varname, " ".join(result))


def _run_hasflag(rt: Runtime, t: Test) -> bool:
    if len(t.positional) == 2:
        assert rt.vars is not None
        flags = [f for v in rt.sl(t.positional[0]) for f in rt.vars.get(v).split()]
    else:
        flags = list(rt.flags)
    return rt.match(t, flags, rt.sl(t.positional[-1]))


def _flag_command(name: str) -> Spec:
    return Spec(name, "command", ext="imap4flags", positional=("stringlist",),
                var_leading="string", check=_check_command, run=_run_flag)


IMAP4FLAGS = Extension(
    "imap4flags",
    commands=(_flag_command("setflag"), _flag_command("addflag"), _flag_command("removeflag")),
    tests=(
        Spec("hasflag", "test", ext="imap4flags", tags=MATCHING, positional=("stringlist",),
             var_leading="stringlist", check=_check_hasflag, run=_run_hasflag),
    ),
)
