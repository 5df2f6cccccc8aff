"""RFC 5429 reject and ereject: refuse the message; conflicts with anything that delivers it."""

from __future__ import annotations

from ..actions import Reject
from ..ast import Command
from ..runtime import Runtime, SieveRuntimeError
from ..spec import Extension, Spec


def _run(rt: Runtime, cmd: Command) -> None:
    if rt.reject_seen:
        raise SieveRuntimeError("duplicate reject/ereject action not allowed")
    if rt.delivering:
        raise SieveRuntimeError(
            "reject/ereject action conflicts with other action that delivers the message"
        )
    if rt.vacation_seen:
        raise SieveRuntimeError(
            "reject/ereject action conflicts with vacation: both answer the sender"
        )
    rt.reject_seen = True
    rt.implicit_keep = False
    rt.add(Reject(rt.s(cmd.positional[0]), extended=cmd.name == "ereject"))


REJECT = Extension(
    "reject", commands=(Spec("reject", "command", ext="reject", positional=("string",), run=_run),)
)
EREJECT = Extension(
    "ereject",
    commands=(Spec("ereject", "command", ext="ereject", positional=("string",), run=_run),),
)
