"""Run a compiled script against a message and its envelope (RFC 5228 semantics).

The interpreter only decides: it returns actions, it performs none. A runtime
error or a limit hit throws away every action decided so far and keeps the
message in INBOX, reporting why in ``errors`` (what Pigeonhole does).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from . import vacation as vac
from .actions import Action, Discard, Redirect, Reject, SieveResult, Store, Vacation
from .addresses import Address, parse_address_list, split_address
from .body import body_texts
from .limits import SieveLimits
from .match import match_any
from .message import Envelope, MessageContext
from .parser import Command, Script, Test
from .submission import redirected_to
from .variables import LimitExceeded, Variables, apply_modifiers

MailboxExists = Callable[[str], bool]
SUBADDRESS_DELIMITER = "+"


class SieveRuntimeError(Exception):
    """The script did something that cannot be carried out."""


class _Stop(Exception):
    pass


def _is_inbox(folder: str) -> bool:
    return folder.upper() == "INBOX"


class _Run:
    def __init__(
        self,
        script: Script,
        msg: MessageContext,
        env: Envelope,
        mailbox_exists: MailboxExists,
        limits: SieveLimits,
    ) -> None:
        self.script = script
        self.msg = msg
        self.env = env
        self.mailbox_exists = mailbox_exists
        self.limits = limits
        self.vars: Variables | None = Variables(limits) if "variables" in script.requires else None
        self.flags: list[str] = []  # the imap4flags internal variable
        self.actions: list[Action] = []
        self.implicit_keep = True
        self.deadline = time.monotonic() + limits.max_cpu_seconds
        self.steps = 0
        self.reject_seen = False
        self.vacation_seen = False
        self.delivering = False  # a store or redirect was decided (conflicts with reject)
        self.already_redirected = {a.lower() for a in redirected_to(msg)}

    # --- bookkeeping -------------------------------------------------------

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise LimitExceeded(f"script ran more than {self.limits.max_steps} steps")
        if self.steps % 64 == 0 and time.monotonic() > self.deadline:
            raise LimitExceeded(f"script ran longer than {self.limits.max_cpu_seconds} s")

    def s(self, value: object) -> str:
        assert isinstance(value, str)
        return self.vars.expand(value) if self.vars else value

    def sl(self, values: object) -> list[str]:
        assert isinstance(values, list)
        return [self.s(v) for v in values]

    def add(self, action: Action) -> None:
        if len(self.actions) >= self.limits.max_actions:
            raise LimitExceeded(f"more than {self.limits.max_actions} actions")
        self.actions.append(action)

    # --- commands ----------------------------------------------------------

    def block(self, commands: list[Command]) -> None:
        skip_chain = False
        for cmd in commands:
            self.tick()
            name = cmd.name
            if name == "if":
                skip_chain = self.test(cmd.tests[0])
                if skip_chain:
                    self.block(cmd.block or [])
            elif name == "elsif":
                if not skip_chain:
                    skip_chain = self.test(cmd.tests[0])
                    if skip_chain:
                        self.block(cmd.block or [])
            elif name == "else":
                if not skip_chain:
                    self.block(cmd.block or [])
            else:
                self.command(cmd)

    def command(self, cmd: Command) -> None:
        name, tags, pos = cmd.name, cmd.tags, cmd.positional
        if name == "require":
            return
        if name == "stop":
            raise _Stop
        if name == "keep":
            self.store("INBOX", tags, copy=False)
        elif name == "fileinto":
            self.store(self.s(pos[0]), tags, copy=bool(tags.get("copy")))
        elif name == "discard":
            self.implicit_keep = False
            if Discard() not in self.actions:
                self.add(Discard())
        elif name == "redirect":
            self.redirect(self.s(pos[0]), copy=bool(tags.get("copy")))
        elif name in ("reject", "ereject"):
            self.reject(self.s(pos[0]), extended=name == "ereject")
        elif name in ("setflag", "addflag", "removeflag"):
            self.flag_command(name, pos)
        elif name == "set":
            assert self.vars is not None
            value = apply_modifiers(self.s(pos[1]), list(tags))
            self.vars.set(str(pos[0]), value)
        elif name == "vacation":
            self.vacation(cmd)
        else:  # the validator lets nothing else through
            raise SieveRuntimeError(f"unknown command '{name}'")

    def store(self, folder: str, tags: dict[str, object], copy: bool) -> None:
        if not folder:
            raise SieveRuntimeError("fileinto: empty folder name")
        if self.reject_seen:
            raise SieveRuntimeError(
                "reject/ereject action conflicts with other action: a store delivers the message"
            )
        flags = _flag_list(self.sl(tags["flags"])) if "flags" in tags else list(self.flags)
        self.delivering = True
        new = Store(folder, tuple(flags), bool(tags.get("create")))
        for i, old in enumerate(self.actions):
            # storing twice into one folder stores once; the later flags win, and whether
            # the implicit keep survives is decided by the first one (as in Pigeonhole)
            if isinstance(old, Store) and _same_folder(old.folder, folder):
                self.actions[i] = Store(old.folder, new.flags, old.create or new.create)
                return
        self.add(new)
        if not copy:
            self.implicit_keep = False

    def redirect(self, address: str, copy: bool) -> None:
        addr = split_address(address)
        if addr is None:
            raise SieveRuntimeError(f"redirect: invalid address '{address}'")
        target = str(addr)
        if self.reject_seen:
            raise SieveRuntimeError(
                "reject/ereject action conflicts with other action: a redirect delivers the message"
            )
        if target.lower() in self.already_redirected:
            # loop protection: this message already went to that address through us;
            # treated as done, like Pigeonhole's duplicate redirect
            if not copy:
                self.implicit_keep = False
            return
        self.delivering = True
        if any(
            isinstance(a, Redirect) and a.address.lower() == target.lower() for a in self.actions
        ):
            return  # the first redirect to a target decides about the implicit keep
        count = sum(isinstance(a, Redirect) for a in self.actions)
        if count >= self.limits.max_redirects:
            raise LimitExceeded(
                f"number of redirect actions exceeds the limit of {self.limits.max_redirects}"
            )
        self.add(Redirect(target, copy))
        if not copy:
            self.implicit_keep = False

    def reject(self, reason: str, extended: bool) -> None:
        if self.reject_seen:
            raise SieveRuntimeError("duplicate reject/ereject action not allowed")
        if self.delivering:
            raise SieveRuntimeError(
                "reject/ereject action conflicts with other action that delivers the message"
            )
        if self.vacation_seen:
            raise SieveRuntimeError(
                "reject/ereject action conflicts with vacation: both answer the sender"
            )
        self.reject_seen = True
        self.implicit_keep = False
        self.add(Reject(reason, extended))

    def flag_command(self, name: str, pos: list[object]) -> None:
        if len(pos) == 2:
            assert self.vars is not None
            varname = str(pos[0])
            current = _flag_list(self.vars.get(varname).split())
        else:
            varname = None
            current = self.flags
        given = _flag_list(self.sl(pos[-1]))
        if name == "setflag":
            result = given
        elif name == "addflag":
            lowered = {f.lower() for f in current}
            result = list(current) + [f for f in given if f.lower() not in lowered]
            result = _flag_list(result)
        else:
            drop = {f.lower() for f in given}
            result = [f for f in current if f.lower() not in drop]
        if varname is None:
            self.flags = result
        else:
            assert self.vars is not None
            self.vars.set(varname, " ".join(result))

    def vacation(self, cmd: Command) -> None:
        if self.vacation_seen:
            raise SieveRuntimeError("duplicate vacation action not allowed")
        if self.reject_seen:
            raise SieveRuntimeError("vacation conflicts with reject: both answer the sender")
        self.vacation_seen = True
        tags = cmd.tags
        reason = self.s(cmd.positional[0])
        subject = self.s(tags["subject"]) if "subject" in tags else None
        from_ = self.s(tags["from"]) if "from" in tags else None
        mime = bool(tags.get("mime"))
        addresses = self.sl(tags["addresses"]) if "addresses" in tags else []
        handle = self.s(tags["handle"]) if "handle" in tags else None
        if handle is None:
            handle = vac.default_handle(reason, subject, from_, mime)
        days = vac.clamp_days(tags.get("days"))  # type: ignore[arg-type]
        if vac.refusal(self.msg, self.env, addresses) is not None:
            return
        self.add(
            Vacation(
                to=self.env.sender.strip().strip("<>"),
                subject=subject if subject is not None else vac.default_subject(self.msg),
                body=reason,
                from_=from_ or "",
                mime=mime,
                handle=handle,
                days=days,
                addresses=tuple(addresses),
            )
        )

    # --- tests ---------------------------------------------------------------

    def test(self, t: Test) -> bool:
        self.tick()
        name = t.name
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "not":
            return not self.test(t.tests[0])
        if name == "allof":
            return all(self.test(x) for x in t.tests)
        if name == "anyof":
            return any(self.test(x) for x in t.tests)
        if name == "exists":
            return all(self.msg.has_header(h) for h in self.sl(t.positional[0]))
        if name == "size":
            limit = t.positional[0]
            assert isinstance(limit, int)
            over = t.tags["size"] == "over"
            return self.msg.size > limit if over else self.msg.size < limit
        if name == "mailboxexists":
            return all(self.mailbox_exists(f) for f in self.sl(t.positional[0]))
        if name == "header":
            values = [v for h in self.sl(t.positional[0]) for v in self.msg.header(h)]
            return self.match(t, values, self.sl(t.positional[1]))
        if name == "address":
            values = self.address_values(t)
            return self.match(t, values, self.sl(t.positional[1]))
        if name == "envelope":
            values = self.envelope_values(t)
            return self.match(t, values, self.sl(t.positional[1]))
        if name == "string":
            values = [v for v in self.sl(t.positional[0])]
            # RFC 5229 5: an empty source string counts as "no value" except for :is/:contains
            return self.match(t, values, self.sl(t.positional[1]))
        if name == "hasflag":
            if len(t.positional) == 2:
                assert self.vars is not None
                flags = [f for v in self.sl(t.positional[0]) for f in self.vars.get(v).split()]
            else:
                flags = list(self.flags)
            return self.match(t, flags, self.sl(t.positional[-1]))
        if name == "body":
            values = body_texts(self.msg, t.tags.get("transform", "text"))
            return self.match(t, values, self.sl(t.positional[0]), set_vars=False)
        raise SieveRuntimeError(f"unknown test '{name}'")

    def match(self, t: Test, values: list[str], keys: list[str], set_vars: bool = True) -> bool:
        match_type = str(t.tags.get("match", "is"))
        comparator = str(t.tags.get("comparator", "i;ascii-casemap"))
        ok, captures = match_any(values, keys, match_type, comparator)
        if ok and captures is not None and self.vars is not None and set_vars:
            self.vars.set_match(captures)
        return ok

    def address_values(self, t: Test) -> list[str]:
        part = str(t.tags.get("part", "all"))
        out: list[str] = []
        for name in self.sl(t.positional[0]):
            for raw in self.msg.raw_header(name):
                addrs = parse_address_list(raw)
                if not addrs:
                    # unparsable or empty: Pigeonhole compares the raw value for :all only
                    if part == "all":
                        out.append(raw)
                    continue
                out.extend(v for a in addrs if (v := _part(a, part)) is not None)
        return out

    def envelope_values(self, t: Test) -> list[str]:
        part = str(t.tags.get("part", "all"))
        out: list[str] = []
        for which in self.sl(t.positional[0]):
            which = which.lower()
            if which == "from":
                raw = self.env.sender.strip().strip("<>")
            elif which == "to":
                raw = self.env.recipient.strip().strip("<>")
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
            value = _part(addr, part)
            if value is not None:
                out.append(value)
        return out


def _part(addr: Address, part: str) -> str | None:
    if part == "all":
        return str(addr)
    if part == "localpart":
        return addr.localpart
    if part == "domain":
        return addr.domain
    user, sep, detail = addr.localpart.partition(SUBADDRESS_DELIMITER)
    if part == "user":
        return user
    return detail if sep else None  # RFC 5233: no detail, no match for :detail


def _same_folder(a: str, b: str) -> bool:
    if _is_inbox(a) and _is_inbox(b):
        return True
    return a == b


def _flag_list(items: list[str]) -> list[str]:
    """Split space-separated flag strings; duplicates (case-insensitive) dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        for flag in item.split():
            if flag.lower() not in seen:
                seen.add(flag.lower())
                out.append(flag)
    return out


def _execute(
    script: Script,
    msg: MessageContext,
    env: Envelope,
    mailbox_exists: MailboxExists | None,
    limits: SieveLimits,
) -> tuple[list[Action], Store | None, list[str]]:
    """Explicit actions, the implicit keep (None when cancelled) and errors."""
    run = _Run(script, msg, env, mailbox_exists or (lambda _f: True), limits)
    try:
        with contextlib.suppress(_Stop):
            run.block(script.commands)
    except (SieveRuntimeError, LimitExceeded, RecursionError) as e:
        return [], Store("INBOX", ()), [str(e)]
    keep = Store("INBOX", tuple(run.flags)) if run.implicit_keep else None
    return list(run.actions), keep, []


def _finish(explicit: list[Action], keep: Store | None) -> list[Action]:
    # an explicit store into INBOX already delivers there; the implicit keep adds nothing
    if keep is None or any(isinstance(a, Store) and _is_inbox(a.folder) for a in explicit):
        return explicit
    return [*explicit, keep]


def evaluate(
    script: Script,
    msg: MessageContext,
    env: Envelope,
    mailbox_exists: MailboxExists | None = None,
    limits: SieveLimits | None = None,
) -> SieveResult:
    """Run one script; returns its actions in execution order, implicit keep included."""
    explicit, keep, errors = _execute(script, msg, env, mailbox_exists, limits or SieveLimits())
    return SieveResult(_finish(explicit, keep), errors, implicit_keep=keep is not None)


def run_scripts(
    before: Script | None,
    user: Script | None,
    msg: MessageContext,
    env: Envelope,
    mailbox_exists: MailboxExists | None = None,
    limits: SieveLimits | None = None,
) -> SieveResult:
    """The global ``before`` script, then the user's one if the first kept its implicit keep.

    As with Pigeonhole's sieve_before, the actions of both are carried out; a failure
    in the user's script keeps the message but does not undo the global script's actions.
    """
    limits = limits or SieveLimits()
    if before is None and user is None:
        return SieveResult([Store("INBOX", ())], [], implicit_keep=True)
    if before is None or user is None:
        script = before or user
        assert script is not None
        return evaluate(script, msg, env, mailbox_exists, limits)
    first, keep1, errors1 = _execute(before, msg, env, mailbox_exists, limits)
    if errors1 or keep1 is None:
        return SieveResult(_finish(first, keep1), errors1, implicit_keep=keep1 is not None)
    second, keep2, errors2 = _execute(user, msg, env, mailbox_exists, limits)
    merged: list[Action] = []
    for action in first + second:
        if isinstance(action, Store):
            idx = next(
                (
                    i
                    for i, m in enumerate(merged)
                    if isinstance(m, Store) and _same_folder(m.folder, action.folder)
                ),
                None,
            )
            if idx is not None:
                merged[idx] = action
                continue
        elif action in merged:
            continue
        merged.append(action)
    return SieveResult(_finish(merged, keep2), errors2, implicit_keep=keep2 is not None)
