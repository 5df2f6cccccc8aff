"""Who may authenticate in plaintext, and how failed logins are slowed down and locked out.

Failures are counted per client address and per user name. After `max_failures` within the
lockout period the key is locked for `lockout` seconds, during which the server answers
`-ERR [AUTH]` without checking any password: guessing gets no answer at all, and the costly
hash check cannot be used to load the server. Counting per user stops a distributed guess at
one account; counting per address stops one client guessing many accounts.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("lmtpd.logins")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def normalize_ip(text: str | None) -> IPAddress | None:
    """An address as the client's IP; IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes IPv4, so
    a dual-stack listener counts and trusts the same client the same way."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=16)
def parse_networks(networks: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    parsed = []
    for network in networks:
        try:
            parsed.append(ipaddress.ip_network(network.strip(), strict=False))
        except ValueError:
            log.warning("pop3.trusted_networks: ignoring %r, not an address or CIDR", network)
    return tuple(parsed)


def is_trusted(address: IPAddress | None, trusted_networks: Iterable[str]) -> bool:
    if address is None:
        return False
    return any(address in network for network in parse_networks(tuple(trusted_networks)))


def plaintext_auth_allowed(
    peer: str | None,
    *,
    tls_active: bool,
    allow_plaintext_auth: bool,
    trusted_networks: Iterable[str] = (),
) -> bool:
    """USER/PASS and AUTH PLAIN send the password in the clear: allowed over TLS, from
    loopback or a trusted network, or everywhere when the operator says so."""
    if tls_active or allow_plaintext_auth:
        return True
    address = normalize_ip(peer)
    if address is None:
        return False
    return address.is_loopback or is_trusted(address, trusted_networks)


@dataclass
class Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


class RecordStore(Protocol):
    """Where the counters live (the index: every server process sees every failure)."""

    def load(self, keys: list[str]) -> dict[str, Record]: ...

    def save(self, records: dict[str, Record]) -> None: ...

    def delete(self, keys: list[str]) -> None: ...


class IndexRecords:
    """The counters in the index: every server process sees every failure."""

    # Failures older than this are dropped from the table (lockouts last far less).
    KEEP = 86400.0

    def __init__(self, index: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        self._index = index
        self._clock = clock

    def load(self, keys: list[str]) -> dict[str, Record]:
        return {k: Record(*v) for k, v in self._index().throttle_load(keys).items()}

    def save(self, records: dict[str, Record]) -> None:
        self._index().throttle_save(
            {k: (r.failures, r.last_failure, r.locked_until) for k, r in records.items()},
            self._clock() - self.KEEP,
        )

    def delete(self, keys: list[str]) -> None:
        if keys:
            self._index().throttle_delete(keys)


class LoginThrottle:
    """Failure counters and lockouts, kept in `store`. Not thread-safe: the servers call it
    from the index thread only."""

    def __init__(self, store: RecordStore, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._store = store

    @staticmethod
    def keys(address: IPAddress | None, user: str, *, trusted: bool) -> list[str]:
        """The counters a login attempt touches. A trusted network (say, a webmail gateway)
        is not counted by address, or one user's typos would lock out everyone behind it."""
        keys = ["user:" + user.strip().lower()[:320]]
        if address is not None and not trusted:
            keys.append(f"ip:{address}")
        return keys

    def locked(self, keys: Iterable[str]) -> bool:
        now = self._clock()
        return any(r.locked_until > now for r in self._store.load(list(keys)).values())

    def failure(self, keys: Iterable[str], *, max_failures: int, lockout: float) -> bool:
        """Count a failed login; True when it starts a lockout."""
        now = self._clock()
        keys = list(keys)
        records = self._store.load(keys)
        started = False
        for key in keys:
            record = records.setdefault(key, Record())
            if record.locked_until > now:
                continue  # already locked: do not extend it
            if now - record.last_failure > lockout:
                record.failures = 0  # old failures are forgiven
            record.failures += 1
            record.last_failure = now
            if record.failures >= max_failures:
                record.failures = 0
                record.locked_until = now + lockout
                started = True
        self._store.save(records)
        return started

    def success(self, keys: Iterable[str]) -> None:
        now = self._clock()
        records = self._store.load(list(keys))
        self._store.delete([k for k, r in records.items() if r.locked_until <= now])
