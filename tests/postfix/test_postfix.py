"""Postfix in front of lmtpd, end to end: SMTP client -> Postfix -> LMTP on the Unix socket ->
lmtpd -> Maildir. The Postfix instance is configured from contrib/postfix (see
postfix_instance.py), so these tests also prove the lines an operator copies."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import LMTPD, wait_for
from tests.postfix.conftest import MailSystem, MakeSystem
from tests.postfix.postfix_instance import MAPS_SCRIPT, VARIANTS

DELIVERY_TIMEOUT = 30.0


def message(sender: str, rcpt: str, subject: str, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("Hello through Postfix.\n.leading dot and 8-bit: caf\u00e9\n")
    return msg.as_bytes(policy=email.policy.SMTP)


def wait_for_files(system: MailSystem, address: str, count: int) -> list[Path]:
    files = wait_for(lambda: len(system.inbox(address)) >= count and system.inbox(address),
                     timeout=DELIVERY_TIMEOUT, interval=0.1)
    assert files and len(files) >= count, (
        f"{address}: {len(system.inbox(address))} of {count} messages\n{system.diagnostics()}")
    return files


def log_line(system: MailSystem, queue_id: str, pattern: str) -> str:
    """The first maillog line about queue_id that matches pattern, waiting for it to appear."""
    regex = re.compile(rf"\b{queue_id}: .*{pattern}")

    def find() -> str:
        return next((ln for ln in system.postfix.log().splitlines() if regex.search(ln)), "")

    line = wait_for(find, timeout=DELIVERY_TIMEOUT, interval=0.1)
    assert line, f"no maillog line for {queue_id} matching {pattern!r}\n{system.diagnostics()}"
    return line


@pytest.mark.parametrize("variant", VARIANTS)
def test_smtp_client_to_maildir_through_postfix(mail_system_factory: MakeSystem,
                                                variant: str) -> None:
    system = mail_system_factory(variant=variant)
    queue_id = system.postfix.send("carol@example.com", ["alice@example.org"],
                                   message("carol@example.com", "alice@example.org",
                                           f"relayed {variant}", "<relay-1@example.com>"))
    [path] = wait_for_files(system, "alice@example.org", 1)
    line = log_line(system, queue_id, "status=")
    assert "status=sent" in line and "250 2.0.0" in line, line
    # The relay named in the log is the socket of the variant's transport line.
    assert ("private/lmtpd" if variant == "chroot" else "/run/lmtp.sock") in line, line

    stored = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    # lmtpd's four fields come first, then what Postfix handed over (its own Received).
    assert list(stored.keys())[:4] == ["Return-Path", "Delivered-To", "X-Original-To",
                                       "Received"]
    assert stored["Return-Path"] == "<carol@example.com>"
    assert stored["Delivered-To"] == "alice@example.org"
    assert "by mail.example.org (lmtpd) with LMTP" in stored.get_all("Received")[0]
    assert any("by mx.example.org (Postfix)" in r for r in stored.get_all("Received")[1:])
    assert stored["Subject"] == f"relayed {variant}"
    assert stored["Message-ID"] == "<relay-1@example.com>"
    assert "Hello through Postfix." in stored.get_content()
    assert system.inbox("bob@example.org") == []


def test_one_transaction_for_several_recipients(mail_system_factory: MakeSystem) -> None:
    # Postfix batches the recipients of one message into one LMTP transaction (up to
    # lmtp_destination_recipient_limit) and expects one reply per accepted recipient after the
    # data; a missing or extra one shows as "lost connection" in its log. Without lookups,
    # Postfix takes nobody@ too and lmtpd refuses it after the data.
    system = mail_system_factory(lookups="none")
    rcpts = ["alice@example.org", "bob@example.org", "nobody@example.org"]
    queue_id = system.postfix.send("alice@example.org", rcpts,
                                   message("alice@example.org", ", ".join(rcpts), "batch",
                                           "<batch-1@example.org>"))
    wait_for_files(system, "bob@example.org", 1)
    # alice gets the message and the bounce for nobody@.
    files = wait_for_files(system, "alice@example.org", 2)
    for rcpt in rcpts[:2]:
        line = log_line(system, queue_id, f"to=<{rcpt}>.*status=")
        assert "status=sent" in line and f"250 2.0.0 <{rcpt}>" in line, line
    line = log_line(system, queue_id, "to=<nobody@example.org>.*status=")
    assert "status=bounced" in line and "550 5.1.1" in line, line
    assert "lost connection" not in system.postfix.log(), system.diagnostics()
    [bob_copy] = system.inbox("bob@example.org")
    assert b"Delivered-To: bob@example.org\n" in bob_copy.read_bytes()
    senders = sorted(email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
                     ["Return-Path"] for f in files)
    assert senders == ["<>", "<alice@example.org>"], senders


def test_unknown_user_bounces_to_sender_mailbox(mail_system_factory: MakeSystem) -> None:
    # Without virtual_mailbox_maps Postfix accepts any recipient in the domain; lmtpd refuses
    # the unknown one at RCPT, and Postfix turns that into a bounce to the envelope sender.
    system = mail_system_factory(lookups="none")
    queue_id = system.postfix.send("alice@example.org", ["nobody@example.org"],
                                   message("alice@example.org", "nobody@example.org",
                                           "to nobody", "<bounce-1@example.org>"))
    line = log_line(system, queue_id, "status=bounced")
    assert "550 5.1.1" in line and "RCPT TO" in line, line

    [path] = wait_for_files(system, "alice@example.org", 1)
    raw = path.read_bytes()
    bounce = email.message_from_bytes(raw, policy=email.policy.default)
    assert bounce["Return-Path"] == "<>"
    assert bounce["Delivered-To"] == "alice@example.org"
    assert "MAILER-DAEMON" in bounce["From"]
    assert bounce.get_content_type() == "multipart/report"
    assert b"5.1.1" in raw and b"nobody@example.org" in raw
    # The delivery-status part carries the code and lmtpd's words for it.
    assert re.search(rb"(?m)^Status: 5\.1\.1", raw), raw.decode(errors="replace")
    assert re.search(rb"(?m)^Diagnostic-Code: smtp; 550 5\.1\.1", raw)
    assert system.inbox("nobody@example.org") == []


def test_deferred_while_lmtpd_fails_then_delivered_once(mail_system_factory: MakeSystem,
                                                       tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    faults.write_text("write EIO\n")
    system = mail_system_factory(lmtpd_env={"LMTPD_FAULTS_FILE": str(faults)})
    queue_id = system.postfix.send("carol@example.com", ["alice@example.org"],
                                   message("carol@example.com", "alice@example.org",
                                           "retry me", "<retry-1@example.com>"))
    line = log_line(system, queue_id, "status=deferred")
    assert "451 4.3.0" in line, line
    # Deferred, not bounced: the message waits in Postfix's queue and nothing is stored.
    queue = system.postfix.queue()
    assert queue_id in queue and "451 4.3.0" in queue, queue + system.diagnostics()
    assert system.inbox("alice@example.org") == []
    assert not list((system.lmtpd.maildir("alice@example.org") / "tmp").iterdir())

    faults.write_text("")
    system.postfix.flush()
    [path] = wait_for_files(system, "alice@example.org", 1)
    log_line(system, queue_id, "status=sent")
    assert wait_for(lambda: "Mail queue is empty" in system.postfix.queue(),
                    timeout=DELIVERY_TIMEOUT), system.diagnostics()
    assert b"Subject: retry me" in path.read_bytes()
    # Exactly once, also in the index.
    assert system.inbox("alice@example.org") == [path]
    shown = system.lmtpd.cli("mailbox", "show", "alice@example.org", "--json").stdout
    assert '"messages": 1' in shown, shown
    system.lmtpd.cli("verify")


def run_maps_script(system: MailSystem) -> subprocess.CompletedProcess[str]:
    """contrib/postfix/lmtpd-virtual-maps as an operator runs it, against the test's lmtpd."""
    result = subprocess.run(
        [sys.executable, str(MAPS_SCRIPT), "--lmtpd", LMTPD,
         "--config", str(system.lmtpd.config_path), "--postmap",
         str(system.postfix.maps_file)],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
             "MAIL_CONFIG": str(system.postfix.config_dir)},
    )
    assert result.returncode == 0, result.stderr
    assert os.access(MAPS_SCRIPT, os.X_OK), "contrib/postfix/lmtpd-virtual-maps is not executable"
    return result


def rcpt_reply(system: MailSystem, rcpt: str) -> tuple[int, str]:
    with system.postfix.smtp() as client:
        client.mail("carol@example.com")
        code, text = client.rcpt(rcpt)
        client.rset()
    return code, text.decode()


def test_generated_virtual_maps_refuse_unknown_at_rcpt(mail_system_factory: MakeSystem) -> None:
    system = mail_system_factory(lookups="table")
    system.lmtpd.add_mailbox("dave@example.org")
    system.lmtpd.cli("mailbox", "disable", "dave@example.org")
    system.lmtpd.cli("alias", "add", "postmaster@example.org", "alice@example.org")
    run_maps_script(system)
    table = system.postfix.maps_file.read_text()
    assert table.splitlines()[1:] == ["alice@example.org OK", "bob@example.org OK",
                                      "postmaster@example.org OK"], table
    assert Path(str(system.postfix.maps_file) + ".db").exists()

    # Postfix's smtpd, not lmtpd, refuses: the recipient never reaches the queue.
    code, text = rcpt_reply(system, "nobody@example.org")
    assert code == 550 and "5.1.1" in text, (code, text)
    assert "virtual mailbox table" in text, text
    code, text = rcpt_reply(system, "dave@example.org")  # disabled in lmtpd
    assert code == 550 and "5.1.1" in text, (code, text)
    for known in ("alice@example.org", "alice+lists@example.org", "postmaster@example.org",
                  "BOB@Example.ORG"):
        assert rcpt_reply(system, known)[0] == 250, known

    # A mailbox added later is accepted once the table is regenerated, without a reload.
    system.lmtpd.add_mailbox("erin@example.org")
    run_maps_script(system)
    assert wait_for(lambda: rcpt_reply(system, "erin@example.org")[0] == 250, timeout=15,
                    interval=0.5), system.diagnostics()

    queue_id = system.postfix.send("carol@example.com", ["erin@example.org"],
                                   message("carol@example.com", "erin@example.org",
                                           "with maps", "<maps-1@example.com>"))
    wait_for_files(system, "erin@example.org", 1)
    log_line(system, queue_id, "status=sent")


def test_x_original_to_survives_postfix_alias_expansion(mail_system_factory: MakeSystem) -> None:
    """lmtpd announces DSN, so Postfix sends ORCPT with each recipient: the copy for alice@,
    which Postfix's virtual_alias_maps made of info@, says the sender wrote info@. An alias of
    lmtpd's own is expanded after RCPT: X-Original-To is the RCPT address."""
    # Without lmtpd's lookups: its policy service would refuse info@, which only Postfix knows.
    system = mail_system_factory(lookups="none", main_cf={
        "virtual_alias_maps": "inline:{ { info@example.org = alice@example.org } }"})
    system.lmtpd.cli("alias", "add", "team@example.org", "bob@example.org")
    system.postfix.send("carol@example.com", ["info@example.org", "team@example.org"],
                        message("carol@example.com", "info@example.org", "aliases",
                                "<orcpt-1@example.com>"))
    for address, original in (("alice@example.org", "info@example.org"),
                              ("bob@example.org", "team@example.org")):
        [path] = wait_for_files(system, address, 1)
        stored = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert stored["Delivered-To"] == ("alice@example.org" if address.startswith("alice")
                                          else "team@example.org")
        assert stored["X-Original-To"] == original, system.diagnostics()
    trace = system.lmtpd.cli("trace", "<orcpt-1@example.com>").stdout
    assert "X-Original-To): info@example.org" in trace, trace
