"""Sieve for a delivery: compile (cached) the global `sieve.before` script and a mailbox's own
script, run both over one message, and say what the delivery must do. Shared by the delivery
pipeline and `lmtpd sieve test`, so the dry run shows exactly what delivery would do.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from lmtpd.config import Config
from lmtpd.sieve import (
    Envelope,
    MessageContext,
    Script,
    SieveLimits,
    SieveResult,
    SieveSyntaxError,
    parse,
    run_scripts,
)

log = logging.getLogger("lmtpd.sieve")
_CACHE_SIZE = 256


def limits_from(config: Config) -> SieveLimits:
    return SieveLimits(
        max_script_size=config.sieve.max_script_size,
        max_actions=config.sieve.max_actions,
        max_redirects=config.sieve.max_redirects,
    )


class SieveRunner:
    """Compiled scripts cached by content, so a busy mailbox's script is parsed once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.limits = limits_from(config)
        self._cache: OrderedDict[str, Script] = OrderedDict()
        self.before: Script | None = None
        self.before_error = ""
        self._load_before()

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.limits = limits_from(config)
        self._cache.clear()
        self._load_before()

    def _load_before(self) -> None:
        self.before, self.before_error = None, ""
        path = self.config.sieve.before
        if not path:
            return
        try:
            self.before = parse(Path(path).read_bytes(), self.limits)
        except (OSError, SieveSyntaxError) as error:
            # A broken global script must not stop delivery: it is skipped and logged.
            self.before_error = f"sieve.before {path}: {error}"
            log.error("%s; the global script is not run", self.before_error)

    def compile(self, text: str) -> Script:
        """Parse and validate; raises SieveSyntaxError (line, column)."""
        key = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
        script = self._cache.get(key)
        if script is None:
            script = parse(text, self.limits)
            self._cache[key] = script
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
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
    ) -> SieveResult | None:
        """The actions for one copy, or None when no script applies (plain keep)."""
        user: Script | None = None
        errors: list[str] = []
        if user_script:
            try:
                user = self.compile(user_script)
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
        )
        result.errors[:0] = errors
        for error in result.errors:
            log.warning("sieve for %s: %s", mailbox_address, error)
        return result
