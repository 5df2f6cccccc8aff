"""RFC 5230 vacation: the command; when to answer and the reply itself are in ``vacation.py``."""

from __future__ import annotations

from .. import vacation as vac
from ..actions import Vacation
from ..ast import Command
from ..runtime import Runtime, SieveRuntimeError
from ..spec import Extension, Spec, TagDef
from ..validator import Checker
from .core import MAIL_ADDRESS


def _check(checker: Checker, cmd: Command) -> None:
    sender = cmd.tags.get("from")
    if (
        isinstance(sender, str)
        and checker.constant(sender)
        and not MAIL_ADDRESS.search(sender.replace(">", " ").replace("<", " ").strip())
        and "@" not in sender
    ):
        raise checker.error(f"vacation: invalid :from address '{sender}'", cmd)


def _run(rt: Runtime, cmd: Command) -> None:
    if rt.vacation_seen:
        raise SieveRuntimeError("duplicate vacation action not allowed")
    if rt.reject_seen:
        raise SieveRuntimeError("vacation conflicts with reject: both answer the sender")
    rt.vacation_seen = True
    tags = cmd.tags
    reason = rt.s(cmd.positional[0])
    subject = rt.s(tags["subject"]) if "subject" in tags else None
    from_ = rt.s(tags["from"]) if "from" in tags else None
    mime = bool(tags.get("mime"))
    addresses = rt.sl(tags["addresses"]) if "addresses" in tags else []
    handle = rt.s(tags["handle"]) if "handle" in tags else None
    if handle is None:
        handle = vac.default_handle(reason, subject, from_, mime)
    days = vac.clamp_days(tags.get("days"))  # type: ignore[arg-type]
    if vac.refusal(rt.msg, rt.env, addresses) is not None:
        return
    rt.add(
        Vacation(
            to=rt.env.sender.strip().strip("<>"),
            subject=subject if subject is not None else vac.default_subject(rt.msg),
            body=reason,
            from_=from_ or "",
            mime=mime,
            handle=handle,
            days=days,
            addresses=tuple(addresses),
        )
    )


VACATION = Extension(
    "vacation",
    commands=(
        Spec(
            "vacation", "command", ext="vacation",
            tags={
                "days": TagDef("number"),
                "subject": TagDef("string"),
                "from": TagDef("string"),
                "addresses": TagDef("stringlist"),
                "mime": TagDef(),
                "handle": TagDef("string"),
            },
            positional=("string",), check=_check, run=_run,
        ),
    ),
)
