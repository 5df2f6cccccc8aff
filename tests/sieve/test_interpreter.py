"""Interpreter semantics that the differential suite cannot show: API, JSON, two scripts."""

from __future__ import annotations

import json

import pytest

import lmtpd.sieve as sieve
from lmtpd.sieve import (
    Discard,
    Envelope,
    FileInto,
    MessageContext,
    Redirect,
    Reject,
    SieveResult,
    Vacation,
    actions_to_json,
    compile,
    evaluate,
    run_scripts,
)

RAW = (
    b"From: Sender <sender@example.com>\r\nTo: user@example.org\r\n"
    b"Subject: [spam] hello\r\nX-Spam-Flag: YES\r\nMessage-ID: <x@example.com>\r\n\r\nHi\r\n"
)
ENV = Envelope("sender@example.com", "user+tag@example.org", "user@example.org")


def run(text: str, raw: bytes = RAW, **kw: object) -> SieveResult:
    return evaluate(compile(text), MessageContext.from_bytes(raw), ENV, **kw)  # type: ignore[arg-type]


def test_public_api_names() -> None:
    for name in [
        "compile",
        "SieveSyntaxError",
        "Script",
        "SieveLimits",
        "MessageContext",
        "Envelope",
        "evaluate",
        "run_scripts",
        "SieveResult",
        "FileInto",
        "Discard",
        "Reject",
        "Redirect",
        "Vacation",
        "actions_to_json",
    ]:
        assert hasattr(sieve, name), name


def test_implicit_keep_and_json() -> None:
    result = run("")
    assert result.actions == [FileInto("INBOX", ())] and result.errors == []
    assert actions_to_json(result.actions) == {
        "actions": [{"type": "store", "folder": "INBOX", "flags": []}]
    }


def test_json_of_every_action() -> None:
    actions = [
        FileInto("Lists/python", ("\\Seen",)),
        Discard(),
        Reject("no", extended=True),
        Redirect("a@example.net"),
        Vacation(to="s@example.com", subject="Auto: x", body="b"),
    ]
    doc = actions_to_json(actions)  # type: ignore[arg-type]
    assert json.loads(json.dumps(doc)) == {
        "actions": [
            {"type": "store", "folder": "Lists/python", "flags": ["\\Seen"]},
            {"type": "discard"},
            {"type": "reject", "reason": "no"},
            {"type": "redirect", "address": "a@example.net"},
            {"type": "vacation", "to": "s@example.com", "subject": "Auto: x"},
        ]
    }


def test_only_discard() -> None:
    assert run("discard;").actions == [Discard()]


def test_reject_and_ereject() -> None:
    assert run('require "reject"; reject "no";').actions == [Reject("no", False)]
    assert run('require "ereject"; ereject "no";').actions == [Reject("no", True)]


def test_reject_with_keep_is_a_runtime_error() -> None:
    result = run('require "reject"; keep; reject "no";')
    assert result.actions == [FileInto("INBOX", ())]
    assert result.errors and "reject" in result.errors[0]


def test_keep_and_fileinto_inbox_store_once() -> None:
    result = run('require "fileinto"; keep; fileinto "INBOX"; fileinto "inbox";')
    assert result.actions == [FileInto("INBOX", ())]


def test_flags_on_implicit_keep() -> None:
    result = run('require "imap4flags"; addflag "\\\\Seen"; addflag "\\\\Flagged";')
    assert result.actions == [FileInto("INBOX", ("\\Seen", "\\Flagged"))]


def test_fileinto_create_and_mailboxexists_callback() -> None:
    seen: list[str] = []

    def exists(folder: str) -> bool:
        seen.append(folder)
        return folder == "Archive"

    text = (
        'require ["fileinto", "mailbox"];'
        'if mailboxexists "Archive" { fileinto :create "Archive/2024"; }'
    )
    result = run(text, mailbox_exists=exists)
    assert result.actions == [FileInto("Archive/2024", (), True)]
    assert seen == ["Archive"]


def test_subaddress_from_envelope() -> None:
    text = (
        'require ["envelope", "subaddress", "variables", "fileinto"];'
        'if envelope :detail :matches "to" "*" { fileinto "plus/${1}"; }'
    )
    assert run(text).actions == [FileInto("plus/tag", ())]


def test_null_sender_envelope() -> None:
    script = compile('require "envelope"; if envelope :is "from" "" { discard; }')
    msg = MessageContext.from_bytes(RAW)
    result = evaluate(script, msg, Envelope("", "user@example.org", "user@example.org"))
    assert result.actions == [Discard()]


def test_crlf_and_lf_messages_agree() -> None:
    text = 'require "body"; if body :contains "hi" { discard; }'
    assert run(text).actions == run(text, RAW.replace(b"\r\n", b"\n")).actions == [Discard()]


def test_headers_only_until_body_test() -> None:
    msg = MessageContext.from_bytes(RAW)
    evaluate(compile('if header :contains "subject" "spam" { discard; }'), msg, ENV)
    assert "parsed" not in msg.__dict__
    evaluate(compile('require "body"; if body :contains "hi" { discard; }'), msg, ENV)
    assert "parsed" in msg.__dict__


BEFORE_SPAM = compile(
    'require ["fileinto"]; if header :is "x-spam-flag" "yes" { fileinto "Junk"; stop; }'
)
BEFORE_FLAG = compile('require ["imap4flags", "fileinto", "copy"]; fileinto :copy "Audit";')
USER = compile('require "fileinto"; fileinto "User";')


def test_run_scripts_before_cancels_keep_user_skipped() -> None:
    msg = MessageContext.from_bytes(RAW)
    result = run_scripts(BEFORE_SPAM, USER, msg, ENV)
    assert result.actions == [FileInto("Junk", ())]


def test_run_scripts_user_runs_when_keep_in_force() -> None:
    ham = RAW.replace(b"X-Spam-Flag: YES", b"X-Spam-Flag: NO")
    result = run_scripts(BEFORE_SPAM, USER, MessageContext.from_bytes(ham), ENV)
    assert result.actions == [FileInto("User", ())]


def test_run_scripts_both_actions_are_carried_out() -> None:
    result = run_scripts(BEFORE_FLAG, USER, MessageContext.from_bytes(RAW), ENV)
    assert result.actions == [FileInto("Audit", ()), FileInto("User", ())]
    keep_user = compile("keep;")
    result = run_scripts(BEFORE_FLAG, keep_user, MessageContext.from_bytes(RAW), ENV)
    assert result.actions == [FileInto("Audit", ()), FileInto("INBOX", ())]


def test_run_scripts_user_error_keeps_before_actions() -> None:
    bad = compile('require ["reject"]; keep; reject "x";')
    result = run_scripts(BEFORE_FLAG, bad, MessageContext.from_bytes(RAW), ENV)
    assert result.actions == [FileInto("Audit", ()), FileInto("INBOX", ())]
    assert result.errors


def test_run_scripts_with_missing_scripts() -> None:
    msg = MessageContext.from_bytes(RAW)
    assert run_scripts(None, None, msg, ENV).actions == [FileInto("INBOX", ())]
    assert run_scripts(None, USER, msg, ENV).actions == [FileInto("User", ())]
    assert run_scripts(BEFORE_SPAM, None, msg, ENV).actions == [FileInto("Junk", ())]


@pytest.mark.parametrize(
    ("header", "part", "expected"),
    [
        ('"Doe, Jane" <jane@example.com>, bob@example.net', "all", True),
        ("Group: a@example.com, b@example.com;", "domain", True),
        ("<<<garbage", "all", True),
        ("<<<garbage", "domain", False),
    ],
)
def test_address_header_parsing(header: str, part: str, expected: bool) -> None:
    raw = f"To: {header}\r\nSubject: x\r\n\r\n".encode()
    key = {"all": "*e*", "domain": "example.com"}[part]
    text = f'if address :{part} :matches "to" "{key}" {{ discard; }}'
    assert (run(text, raw).actions == [Discard()]) is expected
