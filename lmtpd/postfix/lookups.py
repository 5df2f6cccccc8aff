"""The answers to Postfix's questions, read live from the index on every request: the
socketmap tables and the policy service's recipient check. Every address is resolved by
the same code as an LMTP RCPT (Store.resolve), so Postfix refuses exactly what lmtpd would.

Nothing is cached: an account change applies at the very next lookup. A lookup that cannot
be answered within LOOKUP_PATIENCE (the index locked by another process, an I/O error)
raises LookupUnavailable, which the services turn into TEMP or DEFER_IF_PERMIT: a fault
never refuses mail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lmtpd import status
from lmtpd.addresses import AddressError, Verdict, parse_address, parse_domain
from lmtpd.postfix.socketmap import NOTFOUND, Lookup, Reply, Status
from lmtpd.store.worker import Workers

LOOKUP_PATIENCE = 1.0
MAPS = ("domain", "mailbox", "alias")
T = TypeVar("T")


class LookupUnavailable(Exception):
    """The index could not answer in time (locked, failing)."""


@dataclass(frozen=True)
class RecipientCheck:
    """What the policy service needs to know of one recipient."""

    verdict: Verdict
    local_domain: bool
    left_out: tuple[str, ...] = ()  # disabled or missing mailboxes an alias names
    full: tuple[str, ...] = ()  # mailboxes that cannot take the message's size


def policy_action(recipient: str, check: RecipientCheck) -> str:
    """The policy action for a recipient at RCPT (pure)."""
    if not check.local_domain:
        return status.POLICY_NO_OPINION
    if check.verdict is not Verdict.OK or check.left_out:
        return status.policy_unknown_user(recipient)
    if check.full:
        return status.policy_mailbox_full(recipient)
    return status.POLICY_NO_OPINION


class PostfixLookups:
    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.store = workers.store

    async def table(self, lookup: Lookup) -> Reply:
        """The socketmap reply to one lookup; raises LookupUnavailable."""
        if lookup.map == "domain":
            return self._domain(lookup.key)
        if lookup.map == "mailbox":
            return await self._on_index(self._mailbox, lookup.key)
        if lookup.map == "alias":
            return await self._on_index(self._alias, lookup.key)
        return Reply(Status.PERM, status.socketmap_unknown_map(lookup.map))

    async def check_recipient(self, recipient: str, size: int) -> RecipientCheck:
        """Raises LookupUnavailable."""
        return await self._on_index(self._check, recipient, size)

    async def _on_index(self, fn: Callable[..., T], *args: object) -> T:
        try:
            async with asyncio.timeout(LOOKUP_PATIENCE):
                return await self.workers.db(self._patiently, fn, *args)
        except TimeoutError:
            raise LookupUnavailable(
                f"no answer from the index within {LOOKUP_PATIENCE:g} s") from None
        except Exception as error:
            raise LookupUnavailable(str(error) or type(error).__name__) from error

    def _patiently(self, fn: Callable[..., T], *args: object) -> T:
        index = self.store.index
        with index.patience(LOOKUP_PATIENCE), index.snapshot():
            return fn(*args)

    def _domain(self, key: str) -> Reply:
        """From the configuration alone: no index, so it never fails."""
        try:
            domain = parse_domain(key)
        except AddressError:
            return NOTFOUND
        if domain in self.store.config.domains.local:
            return Reply(Status.OK, domain)
        return NOTFOUND

    # -- on the index thread ---------------------------------------------------------------

    def _mailbox(self, key: str) -> Reply:
        resolution = self.store.resolve(key)
        if resolution.verdict is not Verdict.OK or not resolution.mailboxes:
            return NOTFOUND
        config = self.store.config
        path = self.store.mailbox_dir(resolution.mailboxes[0].address)
        return Reply(Status.OK, f"{Path(path).relative_to(config.store.root)}/")

    def _alias(self, key: str) -> Reply:
        """An alias's own targets, for Postfix to expand. A mailbox in a domain with a
        catch-all alias maps to itself: Postfix tries the catch-all after a key it did not
        find, and would send that mailbox's mail to it, where lmtpd delivers it."""
        try:
            if key.startswith("@"):
                domain = parse_domain(key[1:])
                canonical = f"@{domain}"
            else:
                address = parse_address(key)
                domain, canonical = address.domain, str(address)
        except AddressError:
            return NOTFOUND
        if domain not in self.store.config.domains.local:
            return NOTFOUND
        index = self.store.index
        if not canonical.startswith("@") and index.get_mailbox(canonical) is not None:
            if index.alias_targets(f"@{domain}"):
                return Reply(Status.OK, canonical)
            return NOTFOUND
        targets = index.alias_targets(canonical)
        return Reply(Status.OK, ",".join(targets)) if targets else NOTFOUND

    def _check(self, recipient: str, size: int) -> RecipientCheck:
        resolution = self.store.resolve(recipient)
        local_domains = self.store.config.domains.local
        if resolution.verdict is Verdict.NOT_LOCAL:
            return RecipientCheck(resolution.verdict, local_domain=False)
        if resolution.verdict is Verdict.INVALID:
            domain = recipient.rpartition("@")[2].strip().strip(">").lower().rstrip(".")
            return RecipientCheck(resolution.verdict, local_domain=domain in local_domains)
        full = []
        if resolution.verdict is Verdict.OK:
            for ref in resolution.mailboxes:
                row = self.store.index.get_mailbox(ref.address)
                if row is not None and self.store.over_quota(row, size):
                    full.append(row.address)
        return RecipientCheck(resolution.verdict, True, tuple(resolution.left_out),
                              tuple(full))
