"""Sieve for a delivery: compile (cached) the global `sieve.before` script and a mailbox's own
script, run both over one message, and say what the delivery must do. Shared by the delivery
pipeline and `lmtpd sieve test`, so the dry run shows exactly what delivery would do.

A runner is built whole for one configuration (the global script compiled with it) and
replaced whole on reload, so no delivery ever sees a runner without its global script.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lmtpd import __version__
from lmtpd.config import Config
from lmtpd.sieve import (
    DuplicateMark,
    Envelope,
    FileInto,
    MessageContext,
    Redirect,
    Reject,
    Script,
    SieveLimits,
    SieveResult,
    SieveSyntaxError,
    Vacation,
    compile,
    run_scripts,
    up_to_date,
    valid_script_name,
)
from lmtpd.store import maildir

log = logging.getLogger("lmtpd.sieve")
_CACHE_SIZE = 256
PersonalScripts = Callable[[str], str | None]


def limits_from(config: Config) -> SieveLimits:
    return SieveLimits(
        max_script_size=config.sieve.max_script_size,
        max_actions=config.sieve.max_actions,
        max_redirects=config.sieve.max_redirects,
    )


@dataclass(frozen=True)
class ScriptSource:
    """The scripts `include` may name: the mailbox's own (``personal``, from the index, given
    by the caller) and the files of ``sieve.global_dir``."""

    global_dir: str = ""
    personal_scripts: PersonalScripts | None = None

    def personal(self, name: str) -> str | None:
        return self.personal_scripts(name) if self.personal_scripts else None

    def global_(self, name: str) -> bytes | None:
        if not self.global_dir or not valid_script_name(name):
            return None
        try:
            # bytes: a file that is not UTF-8 is refused by the compiler, with its position
            return (Path(self.global_dir) / f"{name}.sieve").read_bytes()
        except OSError:
            return None


def environment_of(config: Config) -> dict[str, str]:
    """The RFC 5183 items delivery knows (location, name and phase have defaults)."""
    host = config.hostname
    return {"host": host, "domain": host.partition(".")[2] or host, "version": __version__}


class SieveRunner:
    """Compiled scripts cached by content, so a busy mailbox's script is parsed once."""

    def __init__(self, config: Config) -> None:
        """Blocking (reads and compiles `sieve.before`): build it off the event loop."""
        self.config = config
        self.limits = limits_from(config)
        self._cache: OrderedDict[str, Script] = OrderedDict()
        self.before, self.before_error = self._load_before()

    def _load_before(self) -> tuple[Script | None, str]:
        path = self.config.sieve.before
        if not path:
            return None, ""
        try:
            return compile(Path(path).read_bytes(), self.limits, loader=self.source()), ""
        except (OSError, SieveSyntaxError) as error:
            # A broken global script must not stop delivery: it is skipped and logged.
            problem = f"sieve.before {path}: {error}"
            log.error("%s; the global script is not run", problem)
            return None, problem

    def source(self, personal: PersonalScripts | None = None) -> ScriptSource:
        return ScriptSource(self.config.sieve.global_dir, personal)

    def compile(self, text: str, personal: PersonalScripts | None = None,
                uploading: bool = False) -> Script:
        """Compile, with the scripts it includes; raises SieveSyntaxError (line, column).

        ``uploading``: the script is being stored, so an included script that does not
        exist yet is a warning (``Script.warnings``), not an error."""
        source = self.source(personal)
        if uploading:
            return compile(text, self.limits, loader=source, uploading=True)
        key = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
        script = self._cache.get(key)
        if script is not None and up_to_date(script, source):
            self._cache.move_to_end(key)
            return script
        script = compile(text, self.limits, loader=source)
        self._cache[key] = script
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return script

    def run(
        self,
        user_script: str | None,
        message: bytes,
        *,
        sender: str,
        recipient: str,
        mailbox_address: str,
        mailbox_exists: Callable[[str], bool],
        personal: PersonalScripts | None = None,
        seen: Callable[[str], bool] | None = None,
        environment: Mapping[str, str] | None = None,
        now: float | None = None,
    ) -> SieveResult | None:
        """The actions for one copy, or None when no script applies (plain keep).

        ``personal`` gives the mailbox's other scripts by name (for ``include``), ``seen`` is
        the mailbox's duplicate memory (read-only; the marks to store come back in the
        result), ``environment`` adds to or overrides the RFC 5183 items."""
        user: Script | None = None
        errors: list[str] = []
        if user_script:
            try:
                user = self.compile(user_script, personal)
            except SieveSyntaxError as error:
                errors.append(f"script of {mailbox_address}: {error}")
        if user is None and self.before is None:
            if errors:
                log.error("%s; keeping the message", errors[0])
            return None
        result = run_scripts(
            self.before, user, MessageContext.from_bytes(message),
            Envelope(sender=sender, recipient=recipient, user_address=mailbox_address),
            mailbox_exists=mailbox_exists, limits=self.limits,
            environment={**environment_of(self.config), **(environment or {})},
            now=now, seen=seen or (lambda _key: False),
        )
        result.errors[:0] = errors
        _store_unsafe_folders_in_inbox(result)
        for error in result.errors:
            log.warning("sieve for %s: %s", mailbox_address, error)
        return result


def _store_unsafe_folders_in_inbox(result: SieveResult) -> None:
    """A folder name that cannot be a Maildir++ folder safely (`../../etc`) is stored into
    INBOX, here, so that `lmtpd sieve test` reports what delivery does."""
    for number, action in enumerate(result.actions):
        if (isinstance(action, FileInto) and not maildir.is_inbox(action.folder)
                and not maildir.valid_folder(action.folder)):
            result.errors.append(f"fileinto {action.folder!r}: not a valid folder name; "
                                 f"stored in INBOX")
            result.actions[number] = dataclasses.replace(action, folder=maildir.INBOX)


@dataclass(frozen=True)
class StoreAction:
    folder: str = maildir.INBOX
    flags: tuple[str, ...] = ()
    # The copy editheader made before this action (None: the message as received).
    message: bytes | None = field(default=None, compare=False, repr=False)


@dataclass
class FilterPlan:
    """What the filter decided for one copy, grouped by how delivery carries it out."""

    stores: list[StoreAction] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    vacations: list[Vacation] = field(default_factory=list)
    reject: str | None = None
    # The only copy is the implicit keep into INBOX: no script filed the message itself.
    implicit_keep_only: bool = False
    # What the duplicate test saw, to remember once the message is stored.
    duplicate_marks: list[DuplicateMark] = field(default_factory=list)

    @classmethod
    def keep(cls) -> FilterPlan:
        return cls(stores=[StoreAction()], implicit_keep_only=True)

    def file_by_detail(self, detail: str | None) -> None:
        """`lmtp.detail_folder`: the implicit keep of alice+lists@ goes to the folder
        `lists` instead of INBOX. A detail that cannot be a folder, or a plan in which the
        script stored the message itself (an explicit keep too), is left alone."""
        if (not self.implicit_keep_only or not detail or maildir.is_inbox(detail)
                or not maildir.valid_folder(detail)):
            return
        self.stores = [dataclasses.replace(self.stores[0], folder=detail)]

    def describe(self) -> list[str]:
        """The plan in words, for `lmtpd trace`."""
        words = [f"store {s.folder}" + (f" {' '.join(s.flags)}" if s.flags else "")
                 for s in self.stores]
        words += [f"redirect {r.address}" for r in self.redirects]
        words += [f"vacation {v.to}" for v in self.vacations]
        if self.reject is not None:
            words.append(f"reject {self.reject}")
        if not self.stores and not self.redirects and self.reject is None:
            words.append("discard")
        return words

    @classmethod
    def from_result(cls, result: SieveResult | None) -> FilterPlan:
        if result is None:
            return cls.keep()
        plan = cls()
        for action in result.actions:
            if isinstance(action, FileInto):
                store = StoreAction(maildir.normal_folder(action.folder), tuple(action.flags),
                                    action.message)
                if store not in plan.stores:
                    plan.stores.append(store)
            elif isinstance(action, Redirect):
                plan.redirects.append(action)
            elif isinstance(action, Vacation):
                plan.vacations.append(action)
            elif isinstance(action, Reject):
                plan.reject = action.reason
        plan.implicit_keep_only = (result.implicit_keep and len(plan.stores) == 1
                                   and maildir.is_inbox(plan.stores[0].folder))
        plan.duplicate_marks = list(result.duplicate_marks)
        return plan
