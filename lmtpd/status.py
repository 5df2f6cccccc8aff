"""Every LMTP reply text in one place: the reply table of docs/lmtp.md plus the protocol replies.

Each reply carries an RFC 3463 enhanced status code. `with_enhanced_code` adds one to the
replies aiosmtpd composes on its own, so that no reply after LHLO goes without.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    code: int
    enhanced: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"

    @property
    def is_success(self) -> bool:
        return 200 <= self.code < 300

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.code < 500


def delivered(rcpt: str) -> Reply:
    return Reply(250, "2.0.0", f"<{rcpt}> delivered")


def duplicate(rcpt: str) -> Reply:
    # A duplicate is answered as a success: the sender's copy is already stored.
    return Reply(250, "2.0.0", f"<{rcpt}> delivered (duplicate suppressed)")


def discarded(rcpt: str) -> Reply:
    return Reply(250, "2.0.0", f"<{rcpt}> delivered (discarded by filter)")


def not_local(rcpt: str) -> Reply:
    return Reply(550, "5.1.2", f"<{rcpt}> domain is not local")


def unknown_user(rcpt: str) -> Reply:
    return Reply(550, "5.1.1", f"<{rcpt}> no such mailbox")


def invalid_address(rcpt: str) -> Reply:
    return Reply(550, "5.1.3", f"<{rcpt}> bad recipient address syntax")


def over_quota(rcpt: str) -> Reply:
    return Reply(552, "5.2.2", f"<{rcpt}> mailbox is over quota")


def too_big(limit: int) -> Reply:
    return Reply(552, "5.3.4", f"message exceeds the size limit of {limit} bytes")


def too_many_recipients() -> Reply:
    return Reply(452, "4.5.3", "too many recipients")


def rejected(reason: str) -> Reply:
    # One line only: a reason with line breaks would desynchronise the client.
    text = " ".join(reason.split()) or "rejected by filter"
    return Reply(550, "5.7.1", text)


def mail_loop(rcpt: str) -> Reply:
    return Reply(554, "5.4.6", f"<{rcpt}> mail loop: already delivered here")


def temporary_failure(detail: str = "internal error, try again later") -> Reply:
    return Reply(451, "4.3.0", detail)


def too_many_connections() -> Reply:
    return Reply(421, "4.3.2", "too many connections, try again later")


# -- Postfix lookups: SMTPD policy actions (access(5)) and socketmap reasons -------------

def policy_unknown_user(rcpt: str) -> str:
    return f"550 5.1.1 <{rcpt}>: user unknown"


def policy_mailbox_full(rcpt: str) -> str:
    return f"552 5.2.2 <{rcpt}>: mailbox full"


POLICY_NO_OPINION = "DUNNO"
# DEFER_IF_PERMIT: a 4xx only when the rest of Postfix's checks would accept; a refusal
# decided elsewhere still stands.
POLICY_UNAVAILABLE = "DEFER_IF_PERMIT Service temporarily unavailable"
POLICY_MALFORMED = "DEFER_IF_PERMIT Malformed policy request"

SOCKETMAP_UNAVAILABLE = "index unavailable, try again later"
SOCKETMAP_MALFORMED = "malformed request"


def socketmap_unknown_map(name: str) -> str:
    return f"unknown map {name!r}: expected domain, mailbox or alias"


def sender_ok() -> Reply:
    return Reply(250, "2.1.0", "sender ok")


def recipient_ok() -> Reply:
    return Reply(250, "2.1.5", "recipient ok")


def control_in_path() -> Reply:
    # The path is copied into Return-Path:, Delivered-To: and Received:, where a line break
    # would start a header field of the sender's choosing.
    return Reply(501, "5.1.7", "CR, LF or NUL in the address")


def bad_utf8_path() -> Reply:
    return Reply(501, "5.1.7", "the address is not valid UTF-8")


def utf8_needs_smtputf8() -> Reply:
    # RFC 6531 §3.5: a non-ASCII address in a transaction not started with SMTPUTF8.
    return Reply(553, "5.6.7", "a non-ASCII address needs MAIL FROM ... SMTPUTF8")


def bad_dsn_parameter(keyword: str) -> Reply:
    return Reply(501, "5.5.4", f"malformed {keyword} parameter (RFC 3461)")


def unknown_parameters(command: str) -> Reply:
    # The words aiosmtpd answers an unknown MAIL or RCPT parameter with.
    return Reply(555, "5.5.4", f"{command} parameters not recognized or not implemented")


_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")
_REPLY_CODE = re.compile(r"^(\d{3})([ -])(.*)$", re.DOTALL)
# Default enhanced codes for replies composed by aiosmtpd itself (RFC 3463 / RFC 5248).
_DEFAULT_ENHANCED = {
    211: "2.0.0", 214: "2.0.0", 220: "2.0.0", 221: "2.0.0", 250: "2.0.0", 252: "2.5.0",
    421: "4.3.0", 451: "4.3.0", 452: "4.5.3",
    500: "5.5.2", 501: "5.5.4", 502: "5.5.1", 503: "5.5.1", 504: "5.5.4", 530: "5.7.0",
    550: "5.0.0", 552: "5.3.4", 553: "5.1.3", 554: "5.0.0", 555: "5.5.4",
}


def with_enhanced_code(line: str) -> str:
    """Insert a default enhanced status code into a reply line that lacks one."""
    if _HAS_ENHANCED.match(line):
        return line
    match = _REPLY_CODE.match(line)
    if not match:
        return line
    code = int(match.group(1))
    enhanced = _DEFAULT_ENHANCED.get(code)
    if enhanced is None:
        # 3xx intermediate replies carry no enhanced code (RFC 2034 §3).
        if code // 100 in (2, 4, 5):
            enhanced = f"{code // 100}.0.0"
        else:
            return line
    text = match.group(3).removeprefix("Error: ")
    return f"{code}{match.group(2)}{enhanced} {text}"
