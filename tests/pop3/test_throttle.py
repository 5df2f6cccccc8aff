"""Plaintext-auth policy and the login throttle, without sockets."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lmtpd.store.index import Index
from lmtpd.throttle import (
    IndexRecords,
    LoginThrottle,
    is_trusted,
    normalize_ip,
    plaintext_auth_allowed,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MakeThrottle = Callable[[Clock], LoginThrottle]


@pytest.fixture
def make_throttle(tmp_path: Path) -> Iterator[MakeThrottle]:
    """Throttles over a real index (where the servers keep the counters)."""
    index = Index(tmp_path / "index.sqlite3")

    def make(clock: Clock) -> LoginThrottle:
        return LoginThrottle(IndexRecords(lambda: index, clock=clock), clock=clock)

    yield make
    index.close()


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_use_plaintext(peer: str) -> None:
    assert plaintext_auth_allowed(peer, tls_active=False, allow_plaintext_auth=False)


@pytest.mark.parametrize("peer", ["192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7", None, "junk"])
def test_remote_plaintext_refused_by_default(peer: str | None) -> None:
    assert not plaintext_auth_allowed(peer, tls_active=False, allow_plaintext_auth=False)


def test_tls_or_operator_choice_allows_plaintext() -> None:
    assert plaintext_auth_allowed("192.0.2.7", tls_active=True, allow_plaintext_auth=False)
    assert plaintext_auth_allowed("192.0.2.7", tls_active=False, allow_plaintext_auth=True)


def test_trusted_networks_allow_plaintext() -> None:
    nets = ["10.0.0.0/8", "2001:db8::/32", "not-a-network"]
    assert plaintext_auth_allowed("10.1.2.3", tls_active=False, allow_plaintext_auth=False,
                                  trusted_networks=nets)
    assert plaintext_auth_allowed("2001:db8::5", tls_active=False, allow_plaintext_auth=False,
                                  trusted_networks=nets)
    assert not plaintext_auth_allowed("11.0.0.1", tls_active=False, allow_plaintext_auth=False,
                                      trusted_networks=nets)


def test_normalize_ip() -> None:
    assert normalize_ip("::ffff:10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert normalize_ip("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert normalize_ip("") is None
    assert not is_trusted(None, ["0.0.0.0/0"])


def test_lockout_after_max_failures_then_expiry(make_throttle: MakeThrottle) -> None:
    clock = Clock()
    throttle = make_throttle(clock)
    keys = LoginThrottle.keys(normalize_ip("192.0.2.1"), "Alice@Example.org", trusted=False)
    assert keys == ["user:alice@example.org", "ip:192.0.2.1"]
    for _ in range(2):
        assert not throttle.failure(keys, max_failures=3, lockout=60)
        assert not throttle.locked(keys)
    assert throttle.failure(keys, max_failures=3, lockout=60)
    assert throttle.locked(keys)
    clock.now += 59
    assert throttle.locked(keys)
    clock.now += 2
    assert not throttle.locked(keys)


def test_lockout_is_per_user_and_per_address(make_throttle: MakeThrottle) -> None:
    clock = Clock()
    throttle = make_throttle(clock)
    attacker = normalize_ip("192.0.2.1")
    for user in ("a", "b", "c"):
        throttle.failure(LoginThrottle.keys(attacker, user, trusted=False), max_failures=3,
                         lockout=60)
    # The address is locked for every user, even one never tried...
    assert throttle.locked(LoginThrottle.keys(attacker, "d", trusted=False))
    # ...but those users may still log in from elsewhere.
    assert not throttle.locked(LoginThrottle.keys(normalize_ip("192.0.2.2"), "a", trusted=False))
    # Guesses at one user from many addresses lock that user.
    for last in range(10, 13):
        throttle.failure(LoginThrottle.keys(normalize_ip(f"198.51.100.{last}"), "victim",
                                            trusted=False), max_failures=3, lockout=60)
    assert throttle.locked(LoginThrottle.keys(normalize_ip("203.0.113.9"), "victim",
                                              trusted=False))


def test_old_failures_are_forgiven_and_success_resets(make_throttle: MakeThrottle) -> None:
    clock = Clock()
    throttle = make_throttle(clock)
    keys = LoginThrottle.keys(normalize_ip("192.0.2.1"), "a", trusted=False)
    throttle.failure(keys, max_failures=3, lockout=60)
    throttle.failure(keys, max_failures=3, lockout=60)
    clock.now += 61
    assert not throttle.failure(keys, max_failures=3, lockout=60)
    throttle.success(keys)
    assert not throttle.failure(keys, max_failures=3, lockout=60)
    assert not throttle.failure(keys, max_failures=3, lockout=60)
    assert throttle.failure(keys, max_failures=3, lockout=60)


def test_failures_during_lockout_do_not_extend_it(make_throttle: MakeThrottle) -> None:
    clock = Clock()
    throttle = make_throttle(clock)
    keys = ["user:a"]
    throttle.failure(keys, max_failures=1, lockout=10)
    clock.now += 9
    throttle.failure(keys, max_failures=1, lockout=10)
    clock.now += 2
    assert not throttle.locked(keys)


def test_trusted_network_not_counted_by_address() -> None:
    keys = LoginThrottle.keys(normalize_ip("10.0.0.1"), "a", trusted=True)
    assert keys == ["user:a"]
