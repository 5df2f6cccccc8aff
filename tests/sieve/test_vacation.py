"""Vacation: when it answers, what it answers with, and the reply message itself."""

from __future__ import annotations

import email
import email.policy

import pytest

from lmtpd.sieve import Envelope, MessageContext, Vacation, build_vacation_reply, compile, evaluate
from lmtpd.sieve.vacation import clamp_days, default_handle, refusal

USER = "user@example.org"


def message(headers: str, body: str = "Hello\n") -> bytes:
    return (headers.strip("\n") + "\n\n" + body).encode()


BASE = """From: Sender <sender@example.com>
To: User <user@example.org>
Subject: Lunch?
Message-ID: <m1@example.com>"""


def vacation_of(
    raw: bytes,
    script: str = 'vacation "away";',
    sender: str = "sender@example.com",
    recipient: str = USER,
) -> Vacation | None:
    script_obj = compile('require "vacation";' + script)
    result = evaluate(script_obj, MessageContext.from_bytes(raw), Envelope(sender, recipient, USER))
    assert not result.errors
    found = [a for a in result.actions if isinstance(a, Vacation)]
    return found[0] if found else None


def test_answers_a_normal_message() -> None:
    v = vacation_of(message(BASE))
    assert v is not None
    assert (v.to, v.subject, v.body, v.days) == ("sender@example.com", "Auto: Lunch?", "away", 7)
    assert v.handle == "away<default-subject><default-from><NO-MIME>"


@pytest.mark.parametrize(
    ("sender", "why"),
    [
        ("", "null"),
        ("MAILER-DAEMON@example.com", "system"),
        ("mailer-daemon@example.com", "system"),
        ("owner-python@example.com", "system"),
        ("python-request@example.com", "system"),
        ("LISTSERV@example.com", "system"),
        ("user@example.org", "own address"),
        ("USER@EXAMPLE.ORG", "own address"),
    ],
)
def test_does_not_answer_senders(sender: str, why: str) -> None:
    msg = MessageContext.from_bytes(message(BASE))
    reason = refusal(msg, Envelope(sender, USER, USER), [])
    assert reason is not None and why in reason
    assert vacation_of(message(BASE), sender=sender) is None


@pytest.mark.parametrize(
    "extra",
    [
        "List-Id: <python.example.com>",
        "List-Unsubscribe: <mailto:x@example.com>",
        "List-Post: <mailto:x@example.com>",
        "Precedence: bulk",
        "Precedence: LIST",
        "Precedence: junk",
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
    ],
)
def test_does_not_answer_lists_and_robots(extra: str) -> None:
    assert vacation_of(message(BASE + "\n" + extra)) is None


def test_answers_auto_submitted_no_and_other_precedence() -> None:
    assert vacation_of(message(BASE + "\nAuto-Submitted: no")) is not None
    assert vacation_of(message(BASE + "\nPrecedence: first-class")) is not None


@pytest.mark.parametrize("field", ["To", "Cc", "Bcc", "Resent-To", "Resent-Cc"])
def test_needs_the_users_address_in_recipient_fields(field: str) -> None:
    head = f'From: sender@example.com\nTo: other@example.net\n{field}: "U" <User@Example.org>'
    if field == "To":
        head = 'From: sender@example.com\nTo: "U" <User@Example.org>'
    assert vacation_of(message(head + "\nSubject: x")) is not None


def test_not_answered_when_only_bcc_to_someone_else() -> None:
    head = "From: sender@example.com\nTo: other@example.net\nSubject: x"
    assert vacation_of(message(head)) is None
    v = vacation_of(message(head), 'vacation :addresses ["other@example.net"] "away";')
    assert v is not None and v.addresses == ("other@example.net",)


def test_recipient_with_detail_counts_as_mine() -> None:
    head = "From: sender@example.com\nTo: user+lists@example.org\nSubject: x"
    assert vacation_of(message(head), recipient="user+lists@example.org") is not None


def test_sender_in_addresses_is_not_answered() -> None:
    script = 'vacation :addresses "me@example.net" "away";'
    assert vacation_of(message(BASE), script, sender="me@example.net") is None


def test_days_are_clamped() -> None:
    assert [clamp_days(d) for d in (None, 0, 1, 30, 60, 61, 1000)] == [7, 1, 1, 30, 60, 60, 60]
    assert vacation_of(message(BASE), 'vacation :days 0 "x";').days == 1  # type: ignore[union-attr]
    assert vacation_of(message(BASE), 'vacation :days 99 "x";').days == 60  # type: ignore[union-attr]


def test_options_are_carried() -> None:
    v = vacation_of(
        message(BASE),
        'vacation :subject "Away" :from "Boss <boss@example.org>" :handle "h" :mime "x";',
    )
    assert v is not None
    assert (v.subject, v.from_, v.handle, v.mime) == ("Away", "Boss <boss@example.org>", "h", True)
    assert default_handle("r", "s", None, True) == "rs<default-from><MIME>"


def test_default_subject_without_subject_and_encoded() -> None:
    assert vacation_of(message("From: s@example.com\nTo: user@example.org")).subject == (  # type: ignore[union-attr]
        "Automated reply"
    )
    raw = message("From: s@example.com\nTo: user@example.org\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=")
    assert vacation_of(raw).subject == "Auto: Grüße"  # type: ignore[union-attr]


def parse_reply(data: bytes) -> email.message.EmailMessage:
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_build_reply_headers() -> None:
    original = message(BASE + "\nReferences: <m0@example.com>")
    action = Vacation(to="sender@example.com", subject="Auto: Lunch?", body="I am away.\n")
    reply = parse_reply(build_vacation_reply(action, original, USER))
    assert reply["To"].addresses[0].addr_spec == "sender@example.com"
    assert reply["From"].addresses[0].addr_spec == "user@example.org"
    assert reply["Subject"] == "Auto: Lunch?"
    assert reply["In-Reply-To"] == "<m1@example.com>"
    assert reply["References"] == "<m0@example.com> <m1@example.com>"
    assert reply["Auto-Submitted"].startswith("auto-replied")
    assert reply["Message-ID"].endswith("@example.org>")
    assert reply["Date"]
    assert reply["MIME-Version"] == "1.0"
    assert reply.get_content_type() == "text/plain"
    assert reply.get_content().replace("\r\n", "\n") == "I am away.\n"


def test_build_reply_from_and_unicode_subject() -> None:
    action = Vacation(
        to="s@example.com",
        subject="Auto: Grüße",
        body="Bin weg – bis Montag",
        from_="Boss <boss@example.org>",
    )
    reply = parse_reply(build_vacation_reply(action, message(BASE), USER))
    assert reply["Subject"] == "Auto: Grüße"
    assert reply["From"] == "Boss <boss@example.org>"
    assert "bis Montag" in reply.get_content()


def test_build_reply_without_message_id() -> None:
    action = Vacation(to="s@example.com", subject="x", body="y")
    reply = parse_reply(build_vacation_reply(action, message("From: s@example.com"), USER))
    assert reply["In-Reply-To"] is None and reply["References"] is None


def test_build_reply_mime_body_is_passed_through() -> None:
    body = (
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain\r\n\r\nAway\r\n--b\r\nContent-Type: text/html\r\n\r\n"
        "<p>Away</p>\r\n--b--\r\n"
    )
    action = Vacation(to="s@example.com", subject="x", body=body, mime=True)
    data = build_vacation_reply(action, message(BASE), USER)
    reply = parse_reply(data)
    assert reply.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in reply.iter_parts()] == ["text/plain", "text/html"]
    assert data.count(b"Content-Type:") == 3
