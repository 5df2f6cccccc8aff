"""RFC 5230 vacation: whether to answer (Pigeonhole's rules) and the reply message."""

from __future__ import annotations

import email.utils
import re
import time
from email.message import EmailMessage
from email.policy import SMTP

from .actions import Vacation
from .addresses import parse_address_list, split_address
from .message import Envelope, MessageContext

MIN_DAYS = 1
MAX_DAYS = 60
DEFAULT_DAYS = 7

_LIST_HEADERS = (
    "list-id",
    "list-owner",
    "list-subscribe",
    "list-post",
    "list-unsubscribe",
    "list-help",
    "list-archive",
)
_MY_ADDRESS_HEADERS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")


def clamp_days(days: int | None) -> int:
    if days is None:
        return DEFAULT_DAYS
    return max(MIN_DAYS, min(MAX_DAYS, days))


def default_handle(reason: str, subject: str | None, from_: str | None, mime: bool) -> str:
    # The same composition Pigeonhole uses, so the two agree on what counts as "the same reply"
    return (
        reason
        + (subject if subject is not None else "<default-subject>")
        + (from_ if from_ is not None else "<default-from>")
        + ("<MIME>" if mime else "<NO-MIME>")
    )


def _same(a: str, b: str) -> bool:
    return a.strip().strip("<>").lower() == b.strip().strip("<>").lower()


def is_system_address(sender: str) -> bool:
    addr = split_address(sender)
    local = (addr.localpart if addr else sender).lower()
    return (
        local in ("mailer-daemon", "listserv", "majordomo")
        or local.endswith("-request")
        or local.startswith("owner-")
    )


def refusal(msg: MessageContext, env: Envelope, addresses: list[str]) -> str | None:
    """Why this message must not be answered, or None when a reply is allowed."""
    sender = env.sender.strip().strip("<>")
    if not sender:
        return "the envelope sender is null"
    mine = [a for a in (env.user_address, env.recipient, *addresses) if a]
    if any(_same(sender, a) for a in mine):
        return "the sender is the user's own address"
    if any(msg.has_header(h) for h in _LIST_HEADERS):
        return "the message comes from a mailing list"
    for value in msg.raw_header("auto-submitted"):
        if value.split(";", 1)[0].strip().lower() != "no":
            return "the message is auto-submitted"
    for value in msg.raw_header("precedence"):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return f"the message has precedence {value.strip().lower()}"
    if is_system_address(sender):
        return "the sender is a system address"
    if not _addressed_to(msg, mine):
        return "the user's address is not in To, Cc or Bcc"
    return None


def _addressed_to(msg: MessageContext, mine: list[str]) -> bool:
    for name in _MY_ADDRESS_HEADERS:
        for value in msg.raw_header(name):
            for addr in parse_address_list(value) or []:
                if any(_same(str(addr), m) for m in mine):
                    return True
    return False


def default_subject(msg: MessageContext) -> str:
    subjects = msg.header("subject")
    if not subjects or not subjects[0].strip():
        return "Automated reply"
    return "Auto: " + subjects[0]


# --- the reply ----------------------------------------------------------------


def _domain_of(addr: str) -> str:
    a = split_address(addr)
    return a.domain if a else "localhost"


def build_vacation_reply(action: Vacation, original: bytes, user_address: str) -> bytes:
    """The RFC 5230 reply to send (with envelope sender <>) to ``action.to``."""
    orig = MessageContext.from_bytes(original)
    msgids = orig.raw_header("message-id")
    msgid = msgids[0] if msgids else ""
    refs = " ".join(orig.raw_header("references")).split()
    if msgid:
        refs.append(msgid)

    head = EmailMessage(policy=SMTP)
    head["Message-ID"] = email.utils.make_msgid(domain=_domain_of(user_address))
    head["Date"] = email.utils.formatdate(time.time(), localtime=False)
    head["From"] = action.from_ or f"<{user_address}>"
    head["To"] = f"<{action.to}>"
    head["Subject"] = action.subject
    if msgid:
        head["In-Reply-To"] = msgid
        head["References"] = " ".join(refs)
    head["Auto-Submitted"] = "auto-replied (vacation)"
    head["Precedence"] = "bulk"
    head["X-Auto-Response-Suppress"] = "All"
    head["MIME-Version"] = "1.0"

    if action.mime:
        # :mime: the reason is a MIME entity (its own Content-* headers and body)
        headers = head.as_bytes().rstrip(b"\r\n") + b"\r\n"
        entity = re.sub(r"\r?\n", "\r\n", action.body).lstrip("\r\n")
        if not re.match(r"[A-Za-z0-9-]+:", entity):
            entity = "\r\n" + entity
        return headers + entity.encode("utf-8")

    head["Content-Type"] = "text/plain; charset=utf-8"
    head["Content-Transfer-Encoding"] = "8bit"
    body = re.sub(r"\r?\n", "\r\n", action.body)
    if not body.endswith("\r\n"):
        body += "\r\n"
    return head.as_bytes().rstrip(b"\r\n") + b"\r\n\r\n" + body.encode("utf-8")
