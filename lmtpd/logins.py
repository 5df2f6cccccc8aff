"""Password logins for the services users log in to (POP3, ManageSieve): one throttle, one
failure delay, one lockout and the same log lines for all of them.

A failure counts against the user name and the client address (lmtpd.throttle), in the
index, so five wrong passwords over one service lock the user out of the others too.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from lmtpd import metrics
from lmtpd.config import Pop3Config
from lmtpd.login_cache import LoginCache
from lmtpd.store.index import MailboxRow
from lmtpd.store.worker import Workers
from lmtpd.textproto import LoginRefusal as Refusal
from lmtpd.throttle import IndexRecords, IPAddress, LoginThrottle, is_trusted


@dataclass(frozen=True)
class Attempt:
    """One login attempt as a service received it."""

    service: str  # "pop3", "managesieve": the prefix of the log lines
    username: str
    password: str
    mechanism: str
    address: IPAddress | None
    ip: str


def printable(text: str, limit: int = 80) -> str:
    """A client-supplied string made safe for a log line."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


class Authenticator:
    def __init__(self, workers: Workers, cache: LoginCache) -> None:
        self.workers = workers
        self.cache = cache
        self.throttle = LoginThrottle(IndexRecords(lambda: workers.store.index))

    @property
    def policy(self) -> Pop3Config:
        # Read at each use: a reload replaces the configuration. The POP3 section holds the
        # login policy of every service.
        return self.workers.store.config.pop3

    async def login(self, attempt: Attempt) -> MailboxRow | Refusal:
        """The mailbox, or why not. A refused attempt has already waited out the failure
        delay, so the caller answers at once."""
        policy = self.policy
        log = logging.getLogger(f"lmtpd.{attempt.service}")
        user = printable(attempt.username)
        keys = LoginThrottle.keys(attempt.address, attempt.username,
                                  trusted=is_trusted(attempt.address, policy.trusted_networks))
        if await self.workers.db(self.throttle.locked, keys):
            metrics.login_failed(attempt.service, "locked-out")
            log.warning("%s: login refused user=%s ip=%s reason=locked-out",
                        attempt.service, user, attempt.ip)
            await asyncio.sleep(policy.login_failure_delay)
            return Refusal.LOCKED
        mailbox: MailboxRow | None = None
        if attempt.password:
            try:
                mailbox = await self._check(attempt.username, attempt.password)
            except Exception as error:
                log.error("%s: login user=%s ip=%s: index error: %s", attempt.service, user,
                          attempt.ip, error)
                return Refusal.TEMPORARY
        if mailbox is None:
            if await self.workers.db(self.throttle.failure, keys,
                                     max_failures=policy.max_login_failures,
                                     lockout=policy.lockout):
                log.warning("%s: locking out user=%s ip=%s for %ss", attempt.service, user,
                            attempt.ip, policy.lockout)
            metrics.login_failed(attempt.service, "password")
            log.warning("%s: login-failed user=%s ip=%s method=%s", attempt.service, user,
                        attempt.ip, attempt.mechanism)
            # Sleeping here delays only this client; other sessions go on.
            await asyncio.sleep(policy.login_failure_delay)
            return Refusal.INVALID
        await self.workers.db(self.throttle.success, keys)
        return mailbox

    async def _check(self, username: str, password: str) -> MailboxRow | None:
        """The index lookup on the index thread, the argon2 check in the hashing pool:
        argon2 releases the GIL, so logins run on every core and never hold up the index
        thread."""
        store = self.workers.store
        row = await self.workers.db(store.login_row, username)
        ttl = float(self.policy.login_cache)
        if self.cache.accepts(row, password, ttl):
            return row
        accepted, new_hash = await self.workers.hash(store.check_login, row, password)
        if not accepted or row is None:
            return None
        if new_hash:
            # Rehashed: the next login checks against the new hash (and is cached then).
            await self.workers.db(lambda: store.index.set_password(row.address, new_hash))
        else:
            self.cache.remember(row, password, ttl)
        return row
