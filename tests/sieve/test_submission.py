"""send_message against a real SMTP server and a real sendmail-like program; redirect loops."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from lmtpd.sieve import (
    REDIRECT_HEADER,
    Envelope,
    FileInto,
    MessageContext,
    Redirect,
    SubmissionError,
    SubmissionUnavailable,
    compile,
    evaluate,
    prepare_redirect,
    send_message,
)

RAW = b"From: a@example.com\r\nTo: user@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


class Sink:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, options: list
    ) -> str:
        if address.startswith("refuse"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or b"")
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Sink]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", sink
    finally:
        controller.stop()


def test_send_over_smtp(smtp_server: tuple[str, Sink]) -> None:
    url, sink = smtp_server
    send_message(url, "user@example.org", ["fwd@example.net", "two@example.net"], RAW)
    assert len(sink.received) == 1
    mail_from, rcpts, data = sink.received[0]
    assert mail_from == "user@example.org"
    assert rcpts == ["fwd@example.net", "two@example.net"]
    assert b"Subject: hi" in data and b"body" in data


def test_send_with_null_sender(smtp_server: tuple[str, Sink]) -> None:
    url, sink = smtp_server
    send_message(url, "", ["s@example.com"], RAW)
    assert sink.received[0][0] == "<>" or sink.received[0][0] == ""


def test_refused_recipient_raises(smtp_server: tuple[str, Sink]) -> None:
    url, _sink = smtp_server
    with pytest.raises(SubmissionError):
        send_message(url, "u@example.org", ["refuse@example.net"], RAW)


def test_unreachable_server_raises() -> None:
    with pytest.raises(SubmissionError):
        send_message(f"smtp://127.0.0.1:{free_port()}", "u@example.org", ["x@example.net"], RAW)


def test_empty_submission_is_unavailable() -> None:
    with pytest.raises(SubmissionUnavailable):
        send_message("", "u@example.org", ["x@example.net"], RAW)
    with pytest.raises(SubmissionUnavailable):
        send_message("carrier-pigeon:", "u@example.org", ["x@example.net"], RAW)


def fake_sendmail(tmp_path: Path, status: int = 0) -> tuple[Path, Path]:
    out = tmp_path / "out"
    prog = tmp_path / "sendmail"
    prog.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > "{out}.args"\ncat > "{out}.data"\nexit {status}\n'
    )
    prog.chmod(prog.stat().st_mode | stat.S_IXUSR)
    return prog, out


def test_send_with_sendmail(tmp_path: Path) -> None:
    prog, out = fake_sendmail(tmp_path)
    send_message(f"sendmail:{prog}", "user@example.org", ["-oops@example.net"], RAW)
    args = Path(f"{out}.args").read_text().splitlines()
    assert args == ["-i", "-f", "user@example.org", "--", "-oops@example.net"]
    assert Path(f"{out}.data").read_bytes() == RAW


def test_sendmail_failure_raises(tmp_path: Path) -> None:
    prog, _out = fake_sendmail(tmp_path, status=75)
    with pytest.raises(SubmissionError, match="75"):
        send_message(f"sendmail:{prog}", "u@example.org", ["x@example.net"], RAW)
    with pytest.raises(SubmissionError):
        send_message(f"sendmail:{tmp_path}/missing", "u@example.org", ["x@example.net"], RAW)


def test_prepare_redirect_adds_marker_keeping_line_ends() -> None:
    out = prepare_redirect(RAW, "fwd@example.net")
    assert out == f"{REDIRECT_HEADER}: <fwd@example.net>\r\n".encode() + RAW
    lf = RAW.replace(b"\r\n", b"\n")
    assert prepare_redirect(lf, "<fwd@example.net>\n") == (
        f"{REDIRECT_HEADER}: <fwd@example.net>\n".encode() + lf
    )


def test_redirect_loop_is_broken() -> None:
    env = Envelope("a@example.com", "user@example.org", "user@example.org")
    script = compile('redirect "fwd@example.net";')
    first = evaluate(script, MessageContext.from_bytes(RAW), env)
    assert first.actions == [Redirect("fwd@example.net", False)]
    # the copy comes back (e.g. fwd@ redirects to us): it must not go out again
    looped = prepare_redirect(RAW, "fwd@example.net")
    again = evaluate(script, MessageContext.from_bytes(looped), env)
    assert again.actions == [] and not again.errors
    # other targets still work, and :copy keeps the message
    other = evaluate(
        compile('redirect "FWD@example.net"; redirect "x@example.net";'),
        MessageContext.from_bytes(looped),
        env,
    )
    assert other.actions == [Redirect("x@example.net", False)]
    copy = evaluate(
        compile('require "copy"; redirect :copy "fwd@example.net";'),
        MessageContext.from_bytes(looped),
        env,
    )
    assert copy.actions == [FileInto("INBOX", ())]
