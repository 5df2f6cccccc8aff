"""Postfix asks lmtpd before it accepts: through a real Postfix smtpd configured from
contrib/postfix (socketmap tables and check_policy_service), refusals happen at RCPT time,
account changes apply at once, and a locked index makes Postfix answer 4xx, never 5xx."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Lmtpd, lmtp_send, wait_for
from tests.postfix.conftest import MailSystem, MakeSystem
from tests.postfix.postfix_instance import VARIANTS, contrib_main_cf
from tests.postfix.test_postfix import DELIVERY_TIMEOUT, log_line, message, wait_for_files

SENDER = "bob@example.org"  # a local sender: any bounce would land in bob's INBOX


def rcpt_replies(system: MailSystem, rcpts: list[str], size: int | None = None
                 ) -> list[tuple[int, str]]:
    """The replies of Postfix's smtpd to MAIL FROM (with SIZE=) and each RCPT TO; the
    transaction is reset, so nothing is queued."""
    with system.postfix.smtp() as client:
        code, text = client.mail(SENDER, options=[f"SIZE={size}"] if size else [])
        assert code == 250, (code, text)
        replies = [client.rcpt(rcpt) for rcpt in rcpts]
        client.rset()
    return [(code, text.decode()) for code, text in replies]


def rcpt_reply(system: MailSystem, rcpt: str, size: int | None = None) -> tuple[int, str]:
    return rcpt_replies(system, [rcpt], size)[0]


def assert_nothing_queued_or_bounced(system: MailSystem) -> None:
    queue = system.postfix.queue()
    assert "Mail queue is empty" in queue, queue + system.diagnostics()
    assert "status=bounced" not in system.postfix.log(), system.diagnostics()
    assert system.inbox(SENDER) == [], system.diagnostics()


@pytest.mark.parametrize("variant", VARIANTS)
def test_unknown_user_refused_at_rcpt_and_nothing_queued(mail_system_factory: MakeSystem,
                                                          variant: str) -> None:
    system = mail_system_factory(variant=variant)
    code, text = rcpt_reply(system, "nobody@example.org")
    assert code == 550 and "5.1.1" in text, (code, text)

    # In one transaction with a known recipient: only that one is taken and delivered.
    with system.postfix.smtp() as client:
        client.mail(SENDER)
        refused = client.rcpt("nobody@example.org")
        accepted = client.rcpt("alice@example.org")
        code, text = client.data(message(SENDER, "alice@example.org", "mixed", "<mix-1@x>"))
    assert refused[0] == 550 and accepted[0] == 250 and code == 250, (refused, accepted)
    wait_for_files(system, "alice@example.org", 1)
    assert wait_for(lambda: "Mail queue is empty" in system.postfix.queue(),
                    timeout=DELIVERY_TIMEOUT), system.diagnostics()
    assert_nothing_queued_or_bounced(system)
    # Refused by smtpd: never handed to the lmtp client.
    assert "to=<nobody@example.org>, relay=" not in system.postfix.log(), system.diagnostics()


def test_mailbox_added_a_moment_ago_is_accepted(mail_system_factory: MakeSystem) -> None:
    system = mail_system_factory()
    assert rcpt_reply(system, "erin@example.org")[0] == 550
    system.lmtpd.add_mailbox("erin@example.org")
    # No postmap, no reload, no waiting: the very next RCPT is asked of lmtpd.
    code, text = rcpt_reply(system, "erin@example.org")
    assert code == 250, (code, text)
    assert rcpt_reply(system, "Erin+News@Example.ORG")[0] == 250
    queue_id = system.postfix.send("carol@example.com", ["erin@example.org"],
                                   message("carol@example.com", "erin@example.org", "new",
                                           "<new-1@example.com>"))
    wait_for_files(system, "erin@example.org", 1)
    log_line(system, queue_id, "status=sent")

    system.lmtpd.cli("mailbox", "delete", "erin@example.org")
    code, text = rcpt_reply(system, "erin@example.org")
    assert code == 550 and "5.1.1" in text, (code, text)


def test_disabled_mailbox_refused_and_enabled_again(mail_system_factory: MakeSystem) -> None:
    system = mail_system_factory()
    system.lmtpd.cli("mailbox", "disable", "alice@example.org")
    code, text = rcpt_reply(system, "alice@example.org")
    assert code == 550 and "5.1.1" in text, (code, text)
    system.lmtpd.cli("mailbox", "enable", "alice@example.org")
    assert rcpt_reply(system, "alice@example.org")[0] == 250
    assert_nothing_queued_or_bounced(system)


def fill(lmtpd: Lmtpd, address: str, size: int) -> None:
    """Deliver one message of about `size` bytes straight over LMTP."""
    body = b"Subject: filler\n\n" + b"x" * 70 + b"\n"
    body *= max(1, size // len(body))
    result = lmtp_send(lmtpd.socket_path, "filler@example.com", [address], body)
    assert result[address][0] == 250, result


def test_alias_to_full_mailbox_refused_552_at_rcpt(mail_system_factory: MakeSystem) -> None:
    system = mail_system_factory()
    lmtpd = system.lmtpd
    lmtpd.add_mailbox("carol@example.org", quota="10K")
    lmtpd.cli("alias", "add", "info@example.org", "carol@example.org")
    fill(lmtpd, "carol@example.org", 4000)
    assert rcpt_reply(system, "info@example.org")[0] == 250
    # Usage now exceeds the lowered quota: full, through the alias too.
    lmtpd.cli("mailbox", "quota", "carol@example.org", "2K")
    for rcpt in ("info@example.org", "carol@example.org", "carol+lists@example.org"):
        code, text = rcpt_reply(system, rcpt)
        assert code == 552 and "5.2.2" in text and "mailbox full" in text, (rcpt, code, text)
    assert rcpt_reply(system, "alice@example.org")[0] == 250
    assert_nothing_queued_or_bounced(system)


def test_size_over_remaining_quota_refused_552(mail_system_factory: MakeSystem) -> None:
    system = mail_system_factory()
    system.lmtpd.cli("mailbox", "quota", "alice@example.org", "20K")
    fill(system.lmtpd, "alice@example.org", 8000)
    code, text = rcpt_reply(system, "alice@example.org", size=15000)
    assert code == 552 and "5.2.2" in text, (code, text)
    assert rcpt_reply(system, "alice@example.org", size=5000)[0] == 250
    assert rcpt_reply(system, "alice@example.org")[0] == 250  # no SIZE: 0
    # One recipient full for the size does not refuse the other.
    replies = rcpt_replies(system, ["alice@example.org", "bob@example.org"], size=15000)
    assert [code for code, _ in replies] == [552, 250], replies
    assert_nothing_queued_or_bounced(system)


LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA locking_mode=EXCLUSIVE")
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


def hold_exclusive_lock(index: Path) -> subprocess.Popen[str]:
    """Another process holding the index's EXCLUSIVE lock until its stdin is closed."""
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(index)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(10) == 0


def test_locked_index_gives_4xx_then_delivered(mail_system_factory: MakeSystem) -> None:
    holders: list[subprocess.Popen[str]] = []
    system = mail_system_factory(
        before_start=lambda lmtpd: holders.append(hold_exclusive_lock(lmtpd.index_path)))
    [holder] = holders
    try:
        for rcpt in ("alice@example.org", "nobody@example.org", "alice+x@example.org"):
            code, text = rcpt_reply(system, rcpt)
            assert 400 <= code < 500, (rcpt, code, text, system.diagnostics())
    finally:
        release(holder)
    assert "socketmap-deferred" in system.lmtpd.log() or "policy-deferred" in system.lmtpd.log()
    assert_nothing_queued_or_bounced(system)

    # The sender retries once the lock is gone: accepted and delivered.
    assert wait_for(lambda: rcpt_reply(system, "alice@example.org")[0] == 250,
                    timeout=DELIVERY_TIMEOUT, interval=0.5), system.diagnostics()
    queue_id = system.postfix.send("carol@example.com", ["alice@example.org"],
                                   message("carol@example.com", "alice@example.org",
                                           "after the lock", "<lock-1@example.com>"))
    [path] = wait_for_files(system, "alice@example.org", 1)
    log_line(system, queue_id, "status=sent")
    assert b"Subject: after the lock" in path.read_bytes()
    assert rcpt_reply(system, "nobody@example.org")[0] == 550


def test_write_lock_never_refuses(mail_system_factory: MakeSystem) -> None:
    # A writer holding the lock does not stop readers of the index (WAL): Postfix is told the
    # truth at RCPT, the delivery waits in its queue, and it is stored once the lock is gone.
    system = mail_system_factory()
    writer = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER.replace("locking_mode=EXCLUSIVE", "busy_timeout=0")
         .replace("BEGIN EXCLUSIVE", "BEGIN IMMEDIATE"), str(system.lmtpd.index_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
    try:
        assert rcpt_reply(system, "nobody@example.org")[0] == 550
        queue_id = system.postfix.send("carol@example.com", ["alice@example.org"],
                                       message("carol@example.com", "alice@example.org",
                                               "while locked", "<wlock-1@example.com>"))
        line = log_line(system, queue_id, "status=deferred")
        assert "451 4.3.0" in line, line
    finally:
        release(writer)
    system.postfix.flush()
    wait_for_files(system, "alice@example.org", 1)
    log_line(system, queue_id, "status=sent")
    assert "status=bounced" not in system.postfix.log()


def original_recipient_of(path: Path) -> str | None:
    stored = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return stored["X-Original-To"]


@pytest.mark.parametrize("expansion", ["postfix-table", "lmtpd-alias-map"])
def test_original_recipient_survives_alias_expansion(mail_system_factory: MakeSystem,
                                                     expansion: str) -> None:
    settings = {}
    if expansion == "postfix-table":
        settings["virtual_alias_maps"] = "inline:{ info@example.org=alice@example.org }"
        # An address only Postfix knows is unknown to lmtpd's policy service: it is let
        # through before it, as docs/postfix.md shows.
        restrictions = contrib_main_cf("chroot")["smtpd_recipient_restrictions"]
        settings["smtpd_recipient_restrictions"] = (
            f"check_recipient_access inline:{{ info@example.org=OK }}, {restrictions}")
    else:
        settings["virtual_alias_maps"] = "socketmap:unix:private/lmtpd-socketmap:alias"

    def add_alias(lmtpd: Lmtpd) -> None:
        if expansion == "lmtpd-alias-map":
            lmtpd.cli("alias", "add", "info@example.org", "alice@example.org")

    system = mail_system_factory(main_cf=settings, before_start=add_alias)
    queue_id = system.postfix.send("carol@example.com", ["info@example.org"],
                                   message("carol@example.com", "info@example.org",
                                           f"via {expansion}", "<orig-1@example.com>"))
    [path] = wait_for_files(system, "alice@example.org", 1)
    line = log_line(system, queue_id, "status=sent")
    # Postfix expanded the alias itself: lmtpd was handed alice@.
    assert "to=<alice@example.org>" in line and "orig_to=<info@example.org>" in line, line
    assert original_recipient_of(path) == "info@example.org"


@pytest.mark.parametrize("variant", VARIANTS)
def test_lmtpd_not_running_gives_4xx(mail_system_factory: MakeSystem, variant: str) -> None:
    system = mail_system_factory(variant=variant)
    system.lmtpd.stop()
    for rcpt in ("alice@example.org", "nobody@example.org"):
        code, text = rcpt_reply(system, rcpt)
        assert 400 <= code < 500, (rcpt, code, text, system.diagnostics())
    assert_nothing_queued_or_bounced(system)
    system.lmtpd.start()
    # Addresses smtpd did not ask about during the outage are answered at once.
    assert rcpt_reply(system, "bob@example.org")[0] == 250, system.diagnostics()
    assert rcpt_reply(system, "ghost@example.org")[0] == 550, system.diagnostics()
    # smtpd keeps the failed address resolutions of the outage for the life of its
    # processes (never as a 5xx); a reload replaces them.
    system.postfix.run("postfix", "-c", str(system.postfix.config_dir), "reload")
    assert wait_for(lambda: rcpt_reply(system, "alice@example.org")[0] == 250,
                    timeout=DELIVERY_TIMEOUT, interval=0.5), system.diagnostics()
    assert rcpt_reply(system, "nobody@example.org")[0] == 550
