"""Addresses: parse, validate and normalise them; resolve a recipient to mailboxes (pure).

An address becomes a path on disk (`<root>/mail/<domain>/<local>/`), so anything that could
escape the store is refused here, before any other code sees it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

# RFC 5322 atext plus the dot; no quoted local parts: they cannot be made into safe paths.
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_LOCAL = 64
MAX_ADDRESS = 254
ALIAS_DEPTH = 8


class AddressError(ValueError):
    """An address that cannot be a mailbox, with the reason."""


@dataclass(frozen=True)
class Address:
    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def parse_address(text: str) -> Address:
    """Validate and normalise `local@domain` (angle brackets allowed); lower-cased."""
    raw = text.strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1]
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw):
        raise AddressError(f"{text!r}: control characters, spaces or NUL are not allowed")
    if "/" in raw or "\\" in raw:
        raise AddressError(f"{text!r}: slashes are not allowed")
    if raw.count("@") != 1:
        raise AddressError(f"{text!r}: expected exactly one @")
    local, domain = raw.split("@")
    if not local or not domain:
        raise AddressError(f"{text!r}: empty local part or domain")
    if len(raw) > MAX_ADDRESS or len(local) > MAX_LOCAL:
        raise AddressError(f"{text!r}: too long")
    if local.startswith(".") or ".." in local or local.endswith("."):
        raise AddressError(f"{text!r}: dots may not lead, trail or repeat in the local part")
    if not _LOCAL_RE.match(local):
        raise AddressError(f"{text!r}: the local part has characters that are not allowed")
    domain = parse_domain(domain, text)
    return Address(local.lower(), domain)


def parse_domain(domain: str, context: str | None = None) -> str:
    name = domain.strip().lower().rstrip(".") if domain else ""
    labels = name.split(".") if name else []
    if not labels or not all(_LABEL_RE.match(label) for label in labels):
        raise AddressError(f"{context or domain!r}: {domain!r} is not a valid domain name")
    return name


def split_detail(local: str, delimiter: str) -> tuple[str, str | None]:
    """`alice+lists` -> (`alice`, `lists`) with delimiter `+`; no delimiter -> (`alice`, None)."""
    if delimiter and delimiter in local:
        user, _, detail = local.partition(delimiter)
        if user:
            return user, detail
    return local, None


class Verdict(Enum):
    OK = "ok"
    NOT_LOCAL = "not-local"
    UNKNOWN = "unknown"
    DISABLED = "disabled"
    INVALID = "invalid"


@dataclass(frozen=True)
class MailboxRef:
    """What resolution needs to know of a mailbox."""

    id: int
    address: str
    enabled: bool


@dataclass
class Resolution:
    verdict: Verdict
    recipient: str
    mailboxes: list[MailboxRef] = field(default_factory=list)
    detail: str | None = None
    # With an OK verdict: what the alias also names and delivery leaves out, a disabled
    # mailbox or a target in a local domain that is no mailbox (Postfix's policy service
    # refuses such a recipient; LMTP delivers to the rest).
    left_out: list[str] = field(default_factory=list)


def resolve(
    recipient: str,
    *,
    local_domains: list[str],
    delimiter: str,
    find_mailbox: Callable[[str], MailboxRef | None],
    find_alias: Callable[[str], list[str]],
) -> Resolution:
    """Resolve an envelope recipient as Postfix's virtual(8) does: the full address first,
    then without `+detail`, then the catch-all alias `@domain`. Aliases expand recursively
    (bounded); an alias target that is itself unknown is skipped."""
    try:
        address = parse_address(recipient)
    except AddressError:
        return Resolution(Verdict.INVALID, recipient)
    if address.domain not in local_domains:
        return Resolution(Verdict.NOT_LOCAL, recipient)
    user, detail = split_detail(address.local, delimiter)
    candidates = [str(address)]
    if detail is not None:
        candidates.append(f"{user}@{address.domain}")
    candidates.append(f"@{address.domain}")

    for key in candidates:
        unknown: list[str] = []
        found = _expand(key, find_mailbox, find_alias, ALIAS_DEPTH, unknown)
        if found is None:
            continue
        if not found:
            return Resolution(Verdict.UNKNOWN, recipient, detail=detail)
        enabled = [m for m in found if m.enabled]
        if not enabled:
            return Resolution(Verdict.DISABLED, recipient, found, detail)
        left_out = [m.address for m in found if not m.enabled]
        left_out += [t for t in unknown if t.rpartition("@")[2] in local_domains]
        return Resolution(Verdict.OK, recipient, _unique(enabled), detail,
                          list(dict.fromkeys(left_out)))
    return Resolution(Verdict.UNKNOWN, recipient, detail=detail)


def _expand(
    key: str,
    find_mailbox: Callable[[str], MailboxRef | None],
    find_alias: Callable[[str], list[str]],
    depth: int,
    unknown: list[str],
) -> list[MailboxRef] | None:
    """Mailboxes behind `key`, or None when `key` names neither a mailbox nor an alias.
    Alias targets that name neither are added to `unknown`."""
    if not key.startswith("@"):
        mailbox = find_mailbox(key)
        if mailbox is not None:
            return [mailbox]
    targets = find_alias(key)
    if not targets:
        return None
    found: list[MailboxRef] = []
    if depth <= 0:
        return found
    for target in targets:
        behind = _expand(target, find_mailbox, find_alias, depth - 1, unknown)
        if behind is None:
            unknown.append(target)
        found.extend(behind or [])
    return found


def _unique(mailboxes: list[MailboxRef]) -> list[MailboxRef]:
    seen: set[int] = set()
    result = []
    for mailbox in mailboxes:
        if mailbox.id not in seen:
            seen.add(mailbox.id)
            result.append(mailbox)
    return result
