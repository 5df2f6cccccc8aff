"""Run compiled scripts against a message and its envelope (RFC 5228 semantics).

The interpreter only decides: it returns actions, it performs none, and it has no side
effects (the duplicate memory is read through ``seen`` and what to remember is returned). A
runtime error or a limit hit throws away every action decided so far and keeps the message
in INBOX, reporting why in ``errors`` (what Pigeonhole does).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .actions import Action, DuplicateMark, FileInto, SieveResult
from .ast import Script
from .ext import REGISTRY
from .ext.core import is_inbox, same_folder
from .limits import SieveLimits
from .message import Envelope, MessageContext
from .runtime import (
    MailboxExists,
    ReturnScript,
    Runtime,
    Seen,
    SieveRuntimeError,
    StopScript,
)
from .variables import LimitExceeded


def _never_seen(_key: str) -> bool:
    return False


@dataclass(frozen=True)
class RunOptions:
    """What a run may read besides the message: all plain values and read-only callables."""

    mailbox_exists: MailboxExists | None = None
    limits: SieveLimits = field(default_factory=SieveLimits)
    environment: Mapping[str, str] = field(default_factory=dict)  # RFC 5183 items
    now: float | None = None  # currentdate and the local zone; None: the current time
    seen: Seen = _never_seen  # duplicate memory of the mailbox, read-only


@dataclass
class _Outcome:
    actions: list[Action]
    keep: FileInto | None  # the implicit keep, None when cancelled
    errors: list[str]
    marks: list[DuplicateMark]
    edited: bytes | None


def _execute(script: Script, msg: MessageContext, env: Envelope, options: RunOptions,
             now: float, original: MessageContext | None = None) -> _Outcome:
    """``original``: the message as received, when ``msg`` is already an edited copy."""
    rt = Runtime(
        REGISTRY, script, msg, env,
        original=original,
        limits=options.limits,
        mailbox_exists=options.mailbox_exists or (lambda _f: True),
        environment=options.environment,
        now=now,
        seen=options.seen,
    )
    try:
        rt.block(script.commands)
    except (StopScript, ReturnScript):
        pass
    except (SieveRuntimeError, LimitExceeded, RecursionError) as e:
        return _Outcome([], FileInto("INBOX", ()), [str(e)], [], None)
    edited = rt.message_now()
    keep = FileInto("INBOX", tuple(rt.flags), message=edited) if rt.implicit_keep else None
    return _Outcome(list(rt.actions), keep, [], list(rt.duplicate_marks), edited)


def _finish(explicit: list[Action], keep: FileInto | None) -> list[Action]:
    # an explicit store into INBOX already delivers there; the implicit keep adds nothing
    if keep is None or any(isinstance(a, FileInto) and is_inbox(a.folder) for a in explicit):
        return explicit
    return [*explicit, keep]


def _result(outcome: _Outcome, warnings: list[str]) -> SieveResult:
    return SieveResult(
        actions=_finish(outcome.actions, outcome.keep),
        errors=outcome.errors,
        implicit_keep=outcome.keep is not None,
        duplicate_marks=outcome.marks,
        edited_message=outcome.edited,
        warnings=warnings,
    )


def evaluate(
    script: Script,
    msg: MessageContext,
    env: Envelope,
    mailbox_exists: MailboxExists | None = None,
    limits: SieveLimits | None = None,
    **options: object,
) -> SieveResult:
    """Run one script; returns its actions in execution order, implicit keep included.

    ``options`` are the other fields of ``RunOptions`` (environment, now, seen)."""
    opts = RunOptions(mailbox_exists, limits or SieveLimits(), **options)  # type: ignore[arg-type]
    now = time.time() if opts.now is None else opts.now
    return _result(_execute(script, msg, env, opts, now), list(script.warnings))


def run_scripts(
    before: Script | None,
    user: Script | None,
    msg: MessageContext,
    env: Envelope,
    mailbox_exists: MailboxExists | None = None,
    limits: SieveLimits | None = None,
    **options: object,
) -> SieveResult:
    """The global ``before`` script, then the user's one if the first kept its implicit keep.

    As with Pigeonhole's sieve_before, the actions of both are carried out; a failure
    in the user's script keeps the message but does not undo the global script's actions.
    The user's script sees the message as the global one left it (editheader).
    """
    opts = RunOptions(mailbox_exists, limits or SieveLimits(), **options)  # type: ignore[arg-type]
    now = time.time() if opts.now is None else opts.now
    if before is None and user is None:
        return SieveResult([FileInto("INBOX", ())], [], implicit_keep=True)
    if before is None or user is None:
        script = before or user
        assert script is not None
        return _result(_execute(script, msg, env, opts, now), list(script.warnings))
    first = _execute(before, msg, env, opts, now)
    if first.errors or first.keep is None:
        return _result(first, list(before.warnings))
    seen_msg = msg if first.edited is None else MessageContext.from_bytes(first.edited)
    second = _execute(user, seen_msg, env, opts, now, original=msg)
    merged: list[Action] = []
    for action in first.actions + second.actions:
        if isinstance(action, FileInto):
            idx = next((i for i, m in enumerate(merged)
                        if isinstance(m, FileInto) and same_folder(m.folder, action.folder)),
                       None)
            if idx is not None:
                merged[idx] = action
                continue
        elif action in merged:
            continue
        merged.append(action)
    second.actions = merged
    second.marks = first.marks + second.marks
    return _result(second, list(user.warnings))
