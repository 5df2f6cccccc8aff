"""RCPT time: resolve an address to its mailboxes, refuse what cannot be delivered, and keep
the answers per process while the accounts stay the same."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from lmtpd import status
from lmtpd.addresses import Resolution, Verdict
from lmtpd.rcpt_cache import RcptCache
from lmtpd.status import Reply
from lmtpd.store.index import MailboxRow
from lmtpd.store.worker import Workers


@dataclass(frozen=True)
class Target:
    """One enabled mailbox a recipient resolved to, with its active Sieve script and, when
    that script includes others, the mailbox's scripts by name."""

    mailbox: MailboxRow
    script: str | None
    personal: Mapping[str, str] | None = None


@dataclass
class Recipient:
    address: str
    resolution: Resolution
    # The enabled mailboxes it resolved to at RCPT time, with their Sieve scripts.
    targets: list[Target] = field(default_factory=list)
    # For X-Original-To: the address the sender used, from DSN's ORCPT (RFC 3461) when the
    # MTA sent one; "" means the address itself.
    original: str = ""


class Lookup(NamedTuple):
    """What RCPT learned of an address: the refusal (None to accept) and where it goes."""

    refusal: Reply | None
    resolution: Resolution
    targets: list[Target]


def check_recipient(resolution: Resolution, over_quota: bool) -> Reply | None:
    """The RCPT-time verdict: None to accept, else the reply that refuses."""
    rcpt = resolution.recipient
    match resolution.verdict:
        case Verdict.INVALID:
            return status.invalid_address(rcpt)
        case Verdict.NOT_LOCAL:
            return status.not_local(rcpt)
        case Verdict.UNKNOWN | Verdict.DISABLED:
            return status.unknown_user(rcpt)
    if over_quota:
        return status.over_quota(rcpt)
    return None


class RecipientLookup:
    """RCPT answers, looked up on the index thread in one read transaction and cached per
    process (lmtpd.rcpt_cache) unless they depend on a mailbox's usage."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.store = workers.store
        self.cache: RcptCache[Lookup] = RcptCache(self.store.config.store.index_path)

    def clear(self) -> None:
        self.cache.clear()

    async def check(self, address: str) -> tuple[Reply | None, Recipient]:
        """The RCPT-time verdict (None to accept) and the recipient with its mailboxes."""
        found = self.cache.get(address)
        if found is None:
            generation, found = await self.workers.db(self._look_up, address)
            # A quota makes the answer depend on usage, which changes with every delivery.
            if all(t.mailbox.quota <= 0 for t in found.targets) and (
                    found.refusal is None or found.refusal.code != 552):
                self.cache.put(address, generation, found)
        return found.refusal, Recipient(address, found.resolution, list(found.targets))

    def _look_up(self, address: str) -> tuple[int | None, Lookup]:
        """On the index thread: resolution, the quota check and the Sieve scripts in one read
        transaction, so that a mailbox without a script needs no index read at DATA. First
        comes the accounts generation the answer may be cached under."""
        self.cache.open()
        generation = self.cache.generation()
        index = self.store.index
        targets: list[Target] = []
        with index.snapshot():
            resolution = self.store.resolve(address)
            over_quota = False
            if resolution.verdict is Verdict.OK:
                rows = [row for row in (index.get_mailbox(m.address)
                                        for m in resolution.mailboxes) if row is not None]
                over_quota = bool(rows) and all(self.store.over_quota(row) for row in rows)
                targets = [self._target(row) for row in rows if row.enabled]
        return generation, Lookup(check_recipient(resolution, over_quota), resolution, targets)

    def _target(self, row: MailboxRow) -> Target:
        index = self.store.index
        script = index.get_sieve_script(row.id)
        # Only a script that may include others needs them (a cheap look, made once per
        # cached answer; the compiler decides what the word means).
        personal = index.personal_scripts(row.id) if script and "include" in script else None
        return Target(row, script, personal)
