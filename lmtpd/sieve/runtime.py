"""The state of one script run, and the dispatch of each command and test to its extension.

A ``Runtime`` holds what a run reads (message, envelope, environment, the time, the
duplicate memory) and what it decides (actions, implicit keep, duplicate marks, the edited
header). It performs nothing: no I/O happens here or in the extensions it calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from .actions import Action, DuplicateMark
from .ast import Command, Script, Test
from .limits import SieveLimits
from .match import CASEMAP, COMPARATORS, match_any
from .message import Envelope, HeaderField, MessageContext
from .spec import Registry
from .variables import LimitExceeded, Variables

MailboxExists = Callable[[str], bool]
Seen = Callable[[str], bool]


class SieveRuntimeError(Exception):
    """The script did something that cannot be carried out."""


class StopScript(Exception):
    """``stop``: ends the whole run, included scripts and all."""


class ReturnScript(Exception):
    """``return``: ends the included script that runs it (RFC 6609 3.2)."""


class BreakLoop(Exception):
    """``break``: leaves the innermost ``foreverypart`` loop, or the one of that name."""

    def __init__(self, name: str | None) -> None:
        super().__init__(name)
        self.name = name


class Runtime:
    def __init__(
        self,
        registry: Registry,
        script: Script,
        msg: MessageContext,
        env: Envelope,
        *,
        limits: SieveLimits,
        mailbox_exists: MailboxExists,
        environment: Mapping[str, str],
        now: float,
        seen: Seen,
        original: MessageContext | None = None,
    ) -> None:
        self.registry = registry
        self.script = script
        self.original = original or msg
        self.msg = msg  # the message as editheader left it so far
        self.env = env
        self.limits = limits
        self.mailbox_exists = mailbox_exists
        self.environment = environment
        self.now = now
        self.seen = seen
        self.shared_vars: dict[str, str] = {}
        self.vars: Variables | None = self._variables(script)
        self.flags: list[str] = []  # the imap4flags internal variable
        self.actions: list[Action] = []
        self.implicit_keep = True
        self.duplicate_marks: list[DuplicateMark] = []
        # per-extension memory for this run (duplicate answers, scripts included once, ...)
        self.state: dict[str, object] = {}
        self.reject_seen = False
        self.vacation_seen = False
        self.delivering = False  # a store or redirect was decided (conflicts with reject)
        self.include_chain: list[tuple[str, str]] = [(script.location, script.name)]
        self.mime_part: int | None = None  # index of the part foreverypart is at (ext/mime.py)
        self.deadline = time.monotonic() + limits.max_cpu_seconds
        self.steps = 0
        self._edited_bytes: bytes | None = None

    # --- bookkeeping ---------------------------------------------------------------------

    def _variables(self, script: Script) -> Variables | None:
        if "variables" not in script.requires:
            return None
        return Variables(self.limits, self.shared_vars, script.globals)

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise LimitExceeded(f"script ran more than {self.limits.max_steps} steps")
        if self.steps % 64 == 0 and time.monotonic() > self.deadline:
            raise LimitExceeded(f"script ran longer than {self.limits.max_cpu_seconds} s")

    def s(self, value: object) -> str:
        """A string argument with its variables expanded."""
        assert isinstance(value, str)
        return self.vars.expand(value) if self.vars else value

    def sl(self, values: object) -> list[str]:
        assert isinstance(values, list)
        return [self.s(v) for v in values]

    def add(self, action: Action) -> None:
        if len(self.actions) >= self.limits.max_actions:
            raise LimitExceeded(f"more than {self.limits.max_actions} actions")
        self.actions.append(action)

    # --- the message -----------------------------------------------------------------------

    @property
    def edited(self) -> bool:
        return self.msg is not self.original

    def edit(self, fields: list[HeaderField]) -> None:
        """Replace the header (editheader); later tests and actions see the new one."""
        self.msg = self.msg.with_fields(fields)
        self._edited_bytes = None

    def message_now(self) -> bytes | None:
        """The message an action taken now carries: None while it is the original."""
        if not self.edited:
            return None
        if self._edited_bytes is None:
            self._edited_bytes = self.msg.raw
        return self._edited_bytes

    # --- running ---------------------------------------------------------------------------

    def block(self, commands: list[Command]) -> None:
        matched = False  # whether the if/elsif chain being walked has run a branch
        for cmd in commands:
            self.tick()
            name = cmd.name
            if name == "if":
                matched = self.test(cmd.tests[0])
                if matched:
                    self.block(cmd.block or [])
            elif name == "elsif":
                if not matched:
                    matched = self.test(cmd.tests[0])
                    if matched:
                        self.block(cmd.block or [])
            elif name == "else":
                if not matched:
                    self.block(cmd.block or [])
            else:
                self.command(cmd)

    def command(self, cmd: Command) -> None:
        spec = self.registry.commands[cmd.name]
        if spec.run is not None:
            spec.run(self, cmd)

    def test(self, t: Test) -> bool:
        self.tick()
        spec = self.registry.tests[t.name]
        assert spec.run is not None
        return bool(spec.run(self, t))

    def match(self, t: Test | Command, values: list[str], keys: list[str],
              set_vars: bool = True) -> bool:
        """The node's match type and comparator over ``values``; sets ``${0}``.. on success."""
        match = t.tags.get("match", "is")
        name, argument = match if isinstance(match, tuple) else (match, None)
        match_type = self.registry.match_types[str(name)]
        comparator = COMPARATORS.get(str(t.tags.get("comparator", "")), CASEMAP)
        ok, captures = match_any(values, keys, match_type, comparator, argument, self.deadline)
        if ok and captures is not None and self.vars is not None and set_vars:
            self.vars.set_match(captures)
        return ok

    @contextmanager
    def running(self, script: Script) -> Iterator[None]:
        """Run ``script`` (an included one) with its own local variables, then come back."""
        saved = self.script, self.vars
        self.script, self.vars = script, self._variables(script)
        self.include_chain.append((script.location, script.name))
        try:
            yield
        finally:
            self.include_chain.pop()
            self.script, self.vars = saved
