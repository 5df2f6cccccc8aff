"""Acceptance 5: failed logins are delayed and answered [AUTH]; repeated failures lock out
even the right password until the lockout expires; plaintext authentication is refused on a
non-loopback address until TLS (or trusted_networks) allows it."""

from __future__ import annotations

import contextlib
import ipaddress
import poplib
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Lmtpd, free_port, wait_for, write_config
from tests.pop3.conftest import (
    PASSWORD,
    add_mailboxes,
    auth_plain,
    client_context,
    tls_overrides,
)

LOCKOUT = 3


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lmtpd]:
    instance = Lmtpd(tmp_path_factory.mktemp("pop3-auth"), {"pop3": {
        "login_failure_delay": 1.0, "max_login_failures": 2, "lockout": LOCKOUT}})
    add_mailboxes(instance, "alice@example.org", "bob@example.org", "carol@example.org")
    instance.start()
    yield instance
    instance.stop()


def try_login(instance: Lmtpd, user: str, password: str) -> tuple[bytes, float]:
    """The reply to PASS and how long it took."""
    client = poplib.POP3("127.0.0.1", instance.pop3_port, timeout=10)
    try:
        client.user(user)
        started = time.monotonic()
        try:
            reply = client.pass_(password)
        except poplib.error_proto as error:
            reply = error.args[0]
        elapsed = time.monotonic() - started
        with contextlib.suppress(poplib.error_proto, OSError):
            client.quit()
        return reply, elapsed
    finally:
        client.close()


def test_failure_delay_does_not_block_other_sessions(throttled: Lmtpd) -> None:
    outcome: dict[str, tuple[bytes, float]] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(bad=try_login(throttled, "carol@example.org", "nope")))
    thread.start()
    time.sleep(0.2)
    reply, elapsed = try_login(throttled, "bob@example.org", PASSWORD)
    thread.join()
    assert reply.startswith(b"+OK")
    assert elapsed < 0.8
    bad_reply, bad_elapsed = outcome["bad"]
    assert bad_reply.startswith(b"-ERR [AUTH]")
    assert bad_elapsed >= 1.0


def test_wrong_password_delay_and_lockout(throttled: Lmtpd) -> None:
    reply, elapsed = try_login(throttled, "alice@example.org", "wrong")
    assert reply.startswith(b"-ERR [AUTH] ")
    assert elapsed >= 1.0
    client = poplib.POP3("127.0.0.1", throttled.pop3_port, timeout=10)
    started = time.monotonic()
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\] "):
        auth_plain(client, "alice@example.org", "also wrong")
    assert time.monotonic() - started >= 1.0
    # The failure was counted (and the lockout started) before the delay.
    locked_at = time.monotonic() - 1.0
    # Locked out now: even the right password is refused, without being checked.
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\].*Too many"):
        auth_plain(client, "alice@example.org", PASSWORD)
    client.close()
    reply, _ = try_login(throttled, "alice@example.org", PASSWORD)
    assert reply.startswith(b"-ERR [AUTH]") and b"Too many" in reply
    # The lockout expires.
    time.sleep(max(0.0, LOCKOUT + 0.3 - (time.monotonic() - locked_at)))
    reply, _ = try_login(throttled, "alice@example.org", PASSWORD)
    assert reply.startswith(b"+OK")
    assert PASSWORD not in throttled.log() and "also wrong" not in throttled.log()


def non_loopback_ipv4() -> str | None:
    """An address of this machine that is not loopback, or None."""
    candidates: list[str] = []
    for probe in ("192.0.2.1", "10.255.255.255", "198.51.100.1"):
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))  # UDP: picks a source address, sends nothing
            candidates.append(s.getsockname()[0])
    with contextlib.suppress(OSError):
        candidates += [i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None,
                                                           socket.AF_INET)]
    for candidate in candidates:
        if ipaddress.ip_address(candidate).is_loopback:
            continue
        with contextlib.suppress(OSError), socket.socket() as s:
            s.bind((candidate, 0))
            return candidate
    return None


def test_plaintext_refused_from_a_non_loopback_address(lmtpd_factory: object,
                                                       tls_files: tuple[str, str]) -> None:
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("no non-loopback address on this machine (test_throttle covers the policy)")
    port = free_port()
    instance: Lmtpd = lmtpd_factory(tls_overrides(  # type: ignore[operator]
        tls_files, listen=[f"{address}:{port}"]))
    add_mailboxes(instance, "alice@example.org")
    instance.start()

    client = poplib.POP3(address, port, timeout=10)
    capabilities = client.capa()
    assert "USER" not in capabilities and "SASL" not in capabilities and "STLS" in capabilities
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext"):
        client.user("alice@example.org")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext"):
        auth_plain(client, "alice@example.org")
    client.stls(client_context())
    assert "USER" in client.capa()
    client.user("alice@example.org")
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()

    # trusted_networks takes effect on a reload, for the next connection.
    instance.settings["pop3"]["trusted_networks"] = [f"{address}/32"]
    write_config(instance.config_path, instance.settings)
    assert instance.process is not None
    instance.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in instance.log())
    client = poplib.POP3(address, port, timeout=10)
    client.user("alice@example.org")
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()


def test_login_cache_skips_argon2_and_forgets_on_change(lmtpd_factory: object) -> None:
    """A polling client's second login is taken from the cache (much faster than the argon2
    check), and a password change or a disable applies at the very next login anyway."""
    instance: Lmtpd = lmtpd_factory()  # type: ignore[operator]
    add_mailboxes(instance, "dave@example.org")
    instance.start()
    reply, first = try_login(instance, "dave@example.org", PASSWORD)
    assert reply.startswith(b"+OK")
    cached = []
    for _ in range(5):
        reply, elapsed = try_login(instance, "dave@example.org", PASSWORD)
        assert reply.startswith(b"+OK")
        cached.append(elapsed)
    # Side by side in one run: the full check costs argon2 (tens of ms), a hit a few ms.
    assert sorted(cached)[2] < first / 3, (first, cached)
    # A wrong password is never taken from the cache.
    reply, _ = try_login(instance, "dave@example.org", "not-the-password")
    assert reply.startswith(b"-ERR [AUTH]")
    # A new password applies at once: the old one is refused, the new one accepted.
    instance.cli("mailbox", "passwd", "dave@example.org", "--password-stdin",
                 input="a-new-password\n")
    assert try_login(instance, "dave@example.org", PASSWORD)[0].startswith(b"-ERR [AUTH]")
    assert try_login(instance, "dave@example.org", "a-new-password")[0].startswith(b"+OK")
    assert try_login(instance, "dave@example.org", "a-new-password")[0].startswith(b"+OK")
    instance.cli("mailbox", "disable", "dave@example.org")
    assert try_login(instance, "dave@example.org", "a-new-password")[0].startswith(b"-ERR")


def test_login_cache_off_checks_every_login(lmtpd_factory: object) -> None:
    instance: Lmtpd = lmtpd_factory({"pop3": {"login_cache": 0}})  # type: ignore[operator]
    add_mailboxes(instance, "erin@example.org")
    instance.start()
    times = [try_login(instance, "erin@example.org", PASSWORD)[1] for _ in range(4)]
    assert sorted(times)[1] > max(times) / 3, times  # every one pays for argon2
