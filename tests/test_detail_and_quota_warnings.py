"""`lmtp.detail_folder` (alice+lists@ kept into the folder "lists") and `quota.warnings` (one
warning into INBOX per rise past a level), through a real lmtpd over LMTP and POP3."""

from __future__ import annotations

import email
import email.policy
import json
import poplib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lmtpd, lmtp_send

ALICE = "alice@example.org"


def deliver(lmtpd: Lmtpd, rcpt: str, subject: str = "hello", lines: int = 1) -> None:
    """One message of `lines` lines of 100 bytes (plus headers) over LMTP."""
    head = f"From: carol@example.com\nSubject: {subject}\nMessage-ID: <{subject}@x>\n\n"
    result = lmtp_send(lmtpd.socket_path, "carol@example.com", [rcpt],
                       head.encode() + (b"z" * 99 + b"\n") * lines)
    assert result[rcpt][0] == 250, result


def folder_subjects(lmtpd: Lmtpd, address: str, folder: str = "INBOX") -> list[str]:
    base = lmtpd.maildir(address)
    path = base if folder == "INBOX" else base / f".{folder}"
    files = sorted(p for sub in ("new", "cur") if (path / sub).is_dir()
                   for p in (path / sub).iterdir())
    # Sorted by subject: file names order deliveries only to the second.
    return sorted(email.message_from_bytes(p.read_bytes())["Subject"] for p in files)


def show(lmtpd: Lmtpd, address: str) -> dict[str, Any]:
    return json.loads(lmtpd.cli("mailbox", "show", address, "--json").stdout)


# -- detail_folder --------------------------------------------------------------------------


@pytest.fixture
def detail_lmtpd(lmtpd_factory: Any) -> Lmtpd:
    lmtpd = lmtpd_factory({"lmtp": {"detail_folder": True}})
    lmtpd.add_mailbox(ALICE)
    lmtpd.add_mailbox("bob@example.org")
    lmtpd.cli("alias", "add", "team@example.org", ALICE, "bob@example.org")
    lmtpd.start()
    return lmtpd


def set_script(lmtpd: Lmtpd, tmp_path: Path, address: str, script: str) -> None:
    path = tmp_path / "script.sieve"
    path.write_text(script)
    lmtpd.cli("sieve", "set", address, str(path))


def test_detail_files_the_implicit_keep_into_its_folder(detail_lmtpd: Lmtpd) -> None:
    deliver(detail_lmtpd, "alice+lists@example.org", "to-lists")
    deliver(detail_lmtpd, "alice+Lists@example.org", "to-lists-again")
    deliver(detail_lmtpd, ALICE, "plain")
    assert folder_subjects(detail_lmtpd, ALICE, "lists") == ["to-lists", "to-lists-again"]
    assert folder_subjects(detail_lmtpd, ALICE) == ["plain"]
    assert "lists" in show(detail_lmtpd, ALICE)["folders"]
    # Through an alias, each target files it under the detail.
    deliver(detail_lmtpd, "team+news@example.org", "team-news")
    assert folder_subjects(detail_lmtpd, ALICE, "news") == ["team-news"]
    assert folder_subjects(detail_lmtpd, "bob@example.org", "news") == ["team-news"]
    trace = detail_lmtpd.cli("trace", "<team-news@x>").stdout
    assert "store news" in trace, trace


def test_detail_that_is_no_folder_name_stays_in_inbox(detail_lmtpd: Lmtpd) -> None:
    deliver(detail_lmtpd, "alice+.hidden@example.org", "dot")
    deliver(detail_lmtpd, "alice+@example.org", "empty")
    deliver(detail_lmtpd, "alice+inbox@example.org", "inbox")
    assert folder_subjects(detail_lmtpd, ALICE) == ["dot", "empty", "inbox"]
    assert show(detail_lmtpd, ALICE)["folders"] == ["INBOX"]


@pytest.mark.parametrize(("script", "folder"), [
    ("keep;", "INBOX"),
    ('require "fileinto"; fileinto "Work";', "Work"),
    ('require ["fileinto", "copy"]; fileinto :copy "Work";', "Work"),
])
def test_a_script_that_files_the_message_itself_wins(detail_lmtpd: Lmtpd, tmp_path: Path,
                                                     script: str, folder: str) -> None:
    set_script(detail_lmtpd, tmp_path, ALICE, script)
    deliver(detail_lmtpd, "alice+lists@example.org", "scripted")
    assert "scripted" in folder_subjects(detail_lmtpd, ALICE, folder)
    assert "lists" not in show(detail_lmtpd, ALICE)["folders"]


def test_a_script_that_leaves_the_implicit_keep_gets_the_detail_folder(
        detail_lmtpd: Lmtpd, tmp_path: Path) -> None:
    set_script(detail_lmtpd, tmp_path, ALICE,
               'require "imap4flags"; if header :contains "subject" "urgent" '
               '{ addflag "\\\\Flagged"; }')
    deliver(detail_lmtpd, "alice+lists@example.org", "urgent")
    [path] = (detail_lmtpd.maildir(ALICE) / ".lists" / "cur").iterdir()
    assert path.name.endswith(":2,F")


def test_detail_folder_is_off_by_default(lmtpd: Lmtpd) -> None:
    deliver(lmtpd, "alice+lists@example.org", "default")
    assert folder_subjects(lmtpd, ALICE) == ["default"]
    assert show(lmtpd, ALICE)["folders"] == ["INBOX"]


# -- quota.warnings -------------------------------------------------------------------------


@pytest.fixture
def warned(lmtpd_factory: Any) -> Lmtpd:
    lmtpd = lmtpd_factory({"quota": {"warnings": ["50%", "80%"]}})
    lmtpd.add_mailbox(ALICE, quota="20K")
    lmtpd.add_mailbox("bob@example.org")
    lmtpd.start()
    return lmtpd


def warnings_in(lmtpd: Lmtpd) -> list[str]:
    return [s for s in folder_subjects(lmtpd, ALICE) if s.startswith("Quota warning")]


def stored_bytes(lmtpd: Lmtpd) -> int:
    base = lmtpd.maildir(ALICE)
    return sum(p.stat().st_size for sub in ("new", "cur") for p in (base / sub).iterdir())


def fill_to(lmtpd: Lmtpd, fraction: float, tag: str) -> None:
    """Deliver 1K-sized messages until usage reaches `fraction` of alice's quota."""
    number = 0
    while stored_bytes(lmtpd) < fraction * 20 * 1024:
        number += 1
        deliver(lmtpd, ALICE, f"{tag}-{number}", lines=9)


def test_one_warning_per_level_crossed(warned: Lmtpd) -> None:
    fill_to(warned, 0.45, "a")
    assert warnings_in(warned) == []
    fill_to(warned, 0.5, "b")
    assert warnings_in(warned) == ["Quota warning: 50% of 20K used"]
    fill_to(warned, 0.75, "c")
    assert warnings_in(warned) == ["Quota warning: 50% of 20K used"]  # once per crossing
    fill_to(warned, 0.85, "d")
    assert warnings_in(warned) == ["Quota warning: 50% of 20K used",
                                   "Quota warning: 80% of 20K used"]

    [first] = [p for p in (warned.maildir(ALICE) / "new").iterdir()
               if b"Subject: Quota warning: 50%" in p.read_bytes()]
    warning = email.message_from_bytes(first.read_bytes(), policy=email.policy.default)
    assert warning["From"] == "MAILER-DAEMON@mail.example.org"
    assert warning["Auto-Submitted"] == "auto-generated"
    assert warning["To"] == ALICE
    assert warning["Return-Path"] == "<>"
    assert "20K" in warning.get_content()
    # Warnings count in usage, and the index agrees with the files.
    assert show(warned, ALICE)["bytes"] == stored_bytes(warned)
    warned.cli("verify")
    assert "quota-warning mailbox=alice@example.org level=50%" in warned.log()
    assert folder_subjects(warned, "bob@example.org") == []


def test_warning_comes_again_after_usage_dropped_below(warned: Lmtpd) -> None:
    fill_to(warned, 0.55, "a")
    assert len(warnings_in(warned)) == 1
    # The user deletes most of it over POP3.
    client = poplib.POP3("127.0.0.1", warned.pop3_port, timeout=10)
    client.user(ALICE)
    client.pass_("secret")
    count = len(client.list()[1])
    for number in range(1, count + 1):
        client.dele(number)
    client.quit()
    assert show(warned, ALICE)["bytes"] == 0
    fill_to(warned, 0.45, "b")
    assert warnings_in(warned) == []
    fill_to(warned, 0.5, "c")
    assert warnings_in(warned) == ["Quota warning: 50% of 20K used"]


def test_a_jump_past_several_levels_warns_once_for_the_highest(warned: Lmtpd) -> None:
    deliver(warned, ALICE, "big", lines=170)  # about 85% in one delivery
    assert warnings_in(warned) == ["Quota warning: 80% of 20K used"]
    deliver(warned, ALICE, "small", lines=1)
    assert warnings_in(warned) == ["Quota warning: 80% of 20K used"]


def test_a_warning_is_stored_even_past_the_quota(lmtpd_factory: Any) -> None:
    lmtpd = lmtpd_factory({"quota": {"warnings": ["90%"]}})
    lmtpd.add_mailbox(ALICE, quota="4K")
    lmtpd.start()
    deliver(lmtpd, ALICE, "nearly-full", lines=36)
    assert warnings_in(lmtpd) == ["Quota warning: 90% of 4K used"]
    # The warning itself took the mailbox past its quota: it is the news, so it is stored.
    assert show(lmtpd, ALICE)["bytes"] > 4096
    result = lmtp_send(lmtpd.socket_path, "c@x.org", [ALICE], b"Subject: more\n\nx\n")
    assert result[ALICE][0] == 552
    assert warnings_in(lmtpd) == ["Quota warning: 90% of 4K used"]


@pytest.mark.parametrize(("settings", "key"), [
    ({"quota": {"warnings": ["80"]}}, "quota.warnings"),
    ({"quota": {"warnings": ["150%"]}}, "quota.warnings"),
    ({"lmtp": {"detail_folder": "sometimes"}}, "lmtp.detail_folder"),
    ({"postfix": {"socketmap": "tcp://somewhere"}}, "postfix.socketmap"),
    ({"postfix": {"policy": "unix:"}}, "postfix.policy"),
])
def test_bad_settings_name_their_key(lmtpd_factory: Any, settings: dict[str, Any],
                                     key: str) -> None:
    lmtpd = lmtpd_factory(settings)
    result = lmtpd.cli("check-config", check=False)
    assert result.returncode == 2 and key in result.stderr, result.stderr


def test_settings_shown_by_check_config(lmtpd_factory: Any) -> None:
    lmtpd = lmtpd_factory({"quota": {"warnings": ["80%", "95.5%"]},
                           "postfix": {"policy": "127.0.0.1:10040"}})
    shown = lmtpd.cli("check-config").stdout
    assert 'warnings = ["80%", "95.5%"]' in shown
    assert 'policy = "127.0.0.1:10040"' in shown and 'socketmap = ""' in shown
    assert "detail_folder = false" in shown


def test_an_edited_implicit_keep_goes_to_the_detail_folder_as_edited(
        detail_lmtpd: Lmtpd, tmp_path: Path) -> None:
    set_script(detail_lmtpd, tmp_path, ALICE,
               'require "editheader"; addheader "X-Filtered" "yes";')
    deliver(detail_lmtpd, "alice+lists@example.org", "edited")
    [path] = (detail_lmtpd.maildir(ALICE) / ".lists" / "new").iterdir()
    assert b"X-Filtered: yes" in path.read_bytes()
