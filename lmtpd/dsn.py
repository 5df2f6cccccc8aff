"""DSN parameters of MAIL and RCPT (RFC 3461): taken off the command, checked, decoded.

aiosmtpd answers 555 to any MAIL or RCPT parameter it does not know before the handler runs,
so the session takes these four off the parameter string first (`split_params`) and the
handler then checks them for its command (`mail_params`, `rcpt_params`). Sans-I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAIL_KEYWORDS = frozenset({"RET", "ENVID"})
RCPT_KEYWORDS = frozenset({"NOTIFY", "ORCPT"})
KEYWORDS = MAIL_KEYWORDS | RCPT_KEYWORDS

# RFC 3461 §4: xtext is printable ASCII except "+" and "=", which travel as "+" and two hex
# digits (upper case by the RFC; lower case is accepted, as being liberal costs nothing).
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-Fa-f]{2})*")
_HEXCHAR = re.compile(rb"\+([0-9A-Fa-f]{2})")
# RFC 3461 §4.2: addr-type is an atom; RFC 6533 §3 adds "utf-8" with \x{HEX} escapes.
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ENVID = 100  # RFC 3461 §4.4
MAX_ORCPT = 500  # RFC 3461 §4.2
NOTIFY_WHEN = frozenset({"SUCCESS", "FAILURE", "DELAY"})

Params = list[tuple[str, str | None]]


class Malformed(ValueError):
    """A DSN parameter with a bad value, none, or given twice (501 5.5.4)."""

    def __init__(self, keyword: str) -> None:
        super().__init__(keyword)
        self.keyword = keyword


class Misplaced(ValueError):
    """A DSN parameter of the other command (RCPT's NOTIFY on MAIL, ...): an unknown
    parameter there, answered as aiosmtpd answers one."""


@dataclass(frozen=True)
class MailDsn:
    ret: str = ""  # "FULL" or "HDRS"; "" when not given
    envid: str = ""  # decoded


@dataclass(frozen=True)
class RcptDsn:
    notify: tuple[str, ...] = ()
    # The original recipient's address, decoded, when ORCPT named one of a type we read
    # (rfc822, utf-8); "" otherwise.
    original: str = ""


def split_params(params: str) -> tuple[str, Params]:
    """`params` (what follows the path) without its DSN parameters, and those as (KEYWORD,
    value or None) in the order given. Keywords compare case-insensitively (RFC 5321
    §2.4); values keep their case, which ORCPT's address needs."""
    if not params:
        return params, []
    kept: list[str] = []
    taken: Params = []
    for token in params.split():
        keyword, equals, value = token.partition("=")
        if keyword.upper() in KEYWORDS:
            taken.append((keyword.upper(), value if equals else None))
        else:
            kept.append(token)
    return " ".join(kept), taken


def mail_params(params: Params) -> MailDsn:
    values = _values(params, MAIL_KEYWORDS)
    ret, envid = values.get("RET"), values.get("ENVID")
    if ret is not None and ret.upper() not in ("FULL", "HDRS"):
        raise Malformed("RET")
    if envid is not None:
        decoded = _xtext(envid, "ENVID")
        if not decoded or len(envid) > MAX_ENVID or not (decoded.isascii()
                                                        and decoded.isprintable()):
            raise Malformed("ENVID")
        envid = decoded
    return MailDsn((ret or "").upper(), envid or "")


def rcpt_params(params: Params) -> RcptDsn:
    values = _values(params, RCPT_KEYWORDS)
    notify, orcpt = values.get("NOTIFY"), values.get("ORCPT")
    when: tuple[str, ...] = ()
    if notify is not None:
        when = tuple(notify.upper().split(","))
        if not (when == ("NEVER",) or (set(when) <= NOTIFY_WHEN and len(set(when)) == len(when))):
            raise Malformed("NOTIFY")
    return RcptDsn(when, _original_recipient(orcpt) if orcpt is not None else "")


def _values(params: Params, allowed: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, value in params:
        if keyword not in allowed:
            raise Misplaced(keyword)
        if not value or keyword in values:
            raise Malformed(keyword)
        values[keyword] = value
    return values


def _original_recipient(value: str) -> str:
    """ORCPT=addr-type;address: the address when its type is one we read."""
    addr_type, semicolon, encoded = value.partition(";")
    if not semicolon or not _ATOM.fullmatch(addr_type) or not encoded or len(value) > MAX_ORCPT:
        raise Malformed("ORCPT")
    kind = addr_type.lower()
    if kind == "rfc822":
        address = _xtext(encoded, "ORCPT")
    elif kind == "utf-8":
        address = _UTF8_ESCAPE.sub(lambda m: _code_point(m.group(1)), encoded)
    else:
        _xtext(encoded, "ORCPT")
        return ""
    # The address goes into a header field: nothing that could end or fold a line.
    if not address or _CONTROL.search(address):
        raise Malformed("ORCPT")
    return address


def _xtext(value: str, keyword: str) -> str:
    if not _XTEXT.fullmatch(value):
        raise Malformed(keyword)
    raw = _HEXCHAR.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("ascii"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(keyword) from None


def _code_point(hex_digits: str) -> str:
    number = int(hex_digits, 16)
    if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
        raise Malformed("ORCPT")
    return chr(number)
