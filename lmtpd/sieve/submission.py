"""Sending what redirect and vacation produce, and redirect loop protection."""

from __future__ import annotations

import re
import smtplib
import subprocess
from urllib.parse import urlsplit

from .message import MessageContext

# Added to every redirected copy; a message that already names a target here is not
# sent there again, which breaks loops between two mailboxes redirecting to each other.
REDIRECT_HEADER = "X-Lmtpd-Redirected"
SUBMISSION_TIMEOUT = 60.0


class SubmissionUnavailable(Exception):
    """No submission method is configured (``sieve.submission`` is empty)."""


class SubmissionError(Exception):
    """The submission server or program refused the message."""


def redirected_to(msg: MessageContext) -> list[str]:
    """Addresses this message was already redirected to by us."""
    return [v.strip().strip("<>") for v in msg.raw_header(REDIRECT_HEADER) if v.strip()]


def prepare_redirect(message: bytes, recipient: str) -> bytes:
    """The message to submit for a redirect: the original with our loop marker on top."""
    eol = b"\r\n" if re.search(rb"\r\n", message[:4096]) else b"\n"
    safe = re.sub(r"[\r\n]", "", recipient).strip().strip("<>")
    return f"{REDIRECT_HEADER}: <{safe}>".encode() + eol + message


def _sendmail(path: str, envelope_from: str, recipients: list[str], message: bytes) -> None:
    cmd = [path, "-i", "-f", envelope_from or "<>", "--", *recipients]
    try:
        proc = subprocess.run(
            cmd, input=message, capture_output=True, timeout=SUBMISSION_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SubmissionError(f"{path}: {e}") from e
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise SubmissionError(f"{path} exited with status {proc.returncode}: {err}")


def _smtp(url: str, envelope_from: str, recipients: list[str], message: bytes) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 25
    try:
        with smtplib.SMTP(host, port, timeout=SUBMISSION_TIMEOUT) as smtp:
            refused = smtp.sendmail(envelope_from, recipients, message)
    except (smtplib.SMTPException, OSError) as e:
        raise SubmissionError(f"{url}: {e}") from e
    if refused:
        raise SubmissionError(f"{url}: recipients refused: {refused}")


def send_message(
    submission: str, envelope_from: str, recipients: list[str], message: bytes
) -> None:
    """Send ``message`` (blocking). ``envelope_from`` "" is the null sender."""
    if not submission:
        raise SubmissionUnavailable("no submission method configured (sieve.submission)")
    if not recipients:
        raise ValueError("no recipients")
    if submission.startswith("smtp://"):
        _smtp(submission, envelope_from, recipients, message)
    elif submission.startswith("sendmail:"):
        _sendmail(submission[len("sendmail:") :], envelope_from, recipients, message)
    else:
        raise SubmissionUnavailable(f"unknown submission method '{submission}'")
