"""One login policy for every service: failures over ManageSieve lock the user out of POP3,
and failures over POP3 lock them out of ManageSieve."""

from __future__ import annotations

import base64
import poplib

import pytest

from tests.conftest import Lmtpd
from tests.managesieve.conftest import (
    PASSWORD,
    RawClient,
    add_mailboxes,
    sieve_overrides,
    sieve_port,
)


@pytest.fixture
def policy_lmtpd(lmtpd_factory) -> Lmtpd:
    # Loopback is trusted, so failures count against the user only, not the test's address.
    instance = lmtpd_factory({**sieve_overrides(), "pop3": {
        "login_failure_delay": 0.1, "max_login_failures": 5, "lockout": "5m",
        "trusted_networks": ["127.0.0.0/8"]}})
    add_mailboxes(instance, "sieve1@example.org", "pop1@example.org", "other@example.org")
    instance.start()
    return instance


def sieve_login(instance: Lmtpd, user: str, password: str) -> bytes:
    raw = RawClient(sieve_port(instance))
    try:
        blob = base64.b64encode(f"\0{user}\0{password}".encode())
        return raw.command(b'AUTHENTICATE "PLAIN" "' + blob + b'"\r\n')[-1]
    finally:
        raw.close()


def pop3_login(instance: Lmtpd, user: str, password: str) -> bool:
    client = poplib.POP3("127.0.0.1", instance.pop3_port, timeout=10)
    try:
        client.user(user)
        client.pass_(password)
        return True
    except poplib.error_proto:
        return False
    finally:
        client.close()


def test_five_wrong_passwords_over_managesieve_lock_pop3(policy_lmtpd: Lmtpd) -> None:
    assert pop3_login(policy_lmtpd, "sieve1@example.org", PASSWORD)
    for _ in range(5):
        assert sieve_login(policy_lmtpd, "sieve1@example.org", "wrong").startswith(b"NO")
    assert not pop3_login(policy_lmtpd, "sieve1@example.org", PASSWORD)
    assert sieve_login(policy_lmtpd, "sieve1@example.org", PASSWORD).startswith(b"NO")
    # Only that user.
    assert pop3_login(policy_lmtpd, "other@example.org", PASSWORD)
    assert "managesieve: locking out user=sieve1@example.org" in policy_lmtpd.log()
    assert "pop3: login refused user=sieve1@example.org ip=127.0.0.1 reason=locked-out" in (
        policy_lmtpd.log())


def test_five_wrong_passwords_over_pop3_lock_managesieve(policy_lmtpd: Lmtpd) -> None:
    assert sieve_login(policy_lmtpd, "pop1@example.org", PASSWORD) == b'OK "Logged in."\r\n'
    for _ in range(5):
        assert not pop3_login(policy_lmtpd, "pop1@example.org", "wrong")
    assert sieve_login(policy_lmtpd, "pop1@example.org", PASSWORD).startswith(b"NO")
    assert sieve_login(policy_lmtpd, "other@example.org", PASSWORD).startswith(b"OK")
    assert ("managesieve: login refused user=pop1@example.org ip=127.0.0.1 "
            "reason=locked-out") in policy_lmtpd.log()
