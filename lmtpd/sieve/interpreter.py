"""Run compiled scripts against a message and its envelope (RFC 5228 semantics).

The interpreter only decides: it returns actions, it performs none, and it has no side
effects (the duplicate memory is read through ``seen`` and what to remember is returned). A
runtime error or a limit hit throws away every action decided so far and keeps the message
in INBOX, reporting why in ``errors`` (what Pigeonhole does).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

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
class _Options:
    """What a run may read besides the message: plain values and read-only callables."""

    mailbox_exists: MailboxExists
    limits: SieveLimits
    environment: Mapping[str, str]  # RFC 5183 items
    now: float  # what currentdate sees, and when the local zone is taken
    seen: Seen  # the mailbox's duplicate memory, read-only


@dataclass
class _Outcome:
    actions: list[Action]
    keep: FileInto | None  # the implicit keep, None when cancelled
    errors: list[str]
    marks: list[DuplicateMark]
    edited: bytes | None


def _execute(script: Script, msg: MessageContext, env: Envelope, options: _Options,
             original: MessageContext | None = None) -> _Outcome:
    """``original``: the message as received, when ``msg`` is already an edited copy."""
    rt = Runtime(
        REGISTRY, script, msg, env,
        original=original,
        limits=options.limits,
        mailbox_exists=options.mailbox_exists,
        environment=options.environment,
        now=options.now,
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


def _options(mailbox_exists: MailboxExists | None, limits: SieveLimits | None,
             environment: Mapping[str, str] | None, now: float | None,
             seen: Seen | None) -> _Options:
    return _Options(
        mailbox_exists or (lambda _folder: True),
        limits or SieveLimits(),
        environment or {},
        time.time() if now is None else now,
        seen or _never_seen,
    )


def evaluate(
    script: Script,
    msg: MessageContext,
    env: Envelope,
    mailbox_exists: MailboxExists | None = None,
    limits: SieveLimits | None = None,
    *,
    environment: Mapping[str, str] | None = None,
    now: float | None = None,
    seen: Seen | None = None,
) -> SieveResult:
    """Run one script; returns its actions in execution order, implicit keep included.

    ``environment``: RFC 5183 items; ``now``: the time currentdate sees (default: now);
    ``seen(key)``: whether the mailbox's duplicate memory holds ``key`` (read only)."""
    opts = _options(mailbox_exists, limits, environment, now, seen)
    return _result(_execute(script, msg, env, opts), list(script.warnings))


def run_scripts(
    before: Script | None,
    user: Script | None,
    msg: MessageContext,
    env: Envelope,
    mailbox_exists: MailboxExists | None = None,
    limits: SieveLimits | None = None,
    *,
    environment: Mapping[str, str] | None = None,
    now: float | None = None,
    seen: Seen | None = None,
) -> SieveResult:
    """The global ``before`` script, then the user's one if the first kept its implicit keep.

    As with Pigeonhole's sieve_before, the actions of both are carried out; a failure
    in the user's script keeps the message but does not undo the global script's actions.
    The user's script sees the message as the global one left it (editheader). The keyword
    arguments are those of ``evaluate``.
    """
    opts = _options(mailbox_exists, limits, environment, now, seen)
    if before is None and user is None:
        return SieveResult([FileInto("INBOX", ())], [], implicit_keep=True)
    if before is None or user is None:
        script = before or user
        assert script is not None
        return _result(_execute(script, msg, env, opts), list(script.warnings))
    first = _execute(before, msg, env, opts)
    if first.errors or first.keep is None:
        return _result(first, list(before.warnings))
    seen_msg = msg if first.edited is None else MessageContext.from_bytes(first.edited)
    second = _execute(user, seen_msg, env, opts, original=msg)
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
