"""The base language of RFC 5228: control commands, keep, discard, redirect, and the tests.

``header``, ``address`` and ``exists`` also take the tags of the index (RFC 5260) and mime
(RFC 5703) extensions; which header fields they read is ``ext/headers.py``'s business.
"""

from __future__ import annotations

import re

from ..actions import Discard, FileInto, Redirect
from ..addresses import Address, parse_address_list, split_address
from ..ast import Command, Test
from ..runtime import Runtime, SieveRuntimeError, StopScript
from ..spec import Extension, Spec, TagDef
from ..submission import redirected_to
from ..validator import Checker
from ..variables import LimitExceeded
from . import headers
from .index import INDEX_TAGS
from .mime import MIME_BASIC_TAGS, MIME_TAGS

SUBADDRESS_DELIMITER = "+"

COMPARATOR = {"comparator": TagDef("string")}
MATCH = {
    "is": TagDef(slot="match"),
    "contains": TagDef(slot="match"),
    "matches": TagDef(slot="match"),
    "regex": TagDef(ext="regex", slot="match"),
    "count": TagDef("string", ext="relational", slot="match"),
    "value": TagDef("string", ext="relational", slot="match"),
}
ADDRESS_PART = {
    "all": TagDef(slot="part"),
    "localpart": TagDef(slot="part"),
    "domain": TagDef(slot="part"),
    "user": TagDef(ext="subaddress", slot="part"),
    "detail": TagDef(ext="subaddress", slot="part"),
}
MATCHING = {**COMPARATOR, **MATCH}

# Pigeonhole's list of header fields the address test accepts (tst-address.c)
ADDRESS_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "sender", "resent-from", "resent-to", "reply-to",
    "resent-reply-to", "resent-sender", "resent-cc", "resent-bcc", "for-approval", "for-handling",
    "for-comment", "apparently-to", "errors-to", "delivered-to", "return-receipt-to", "x-admin",
    "read-receipt-to", "x-confirm-reading-to", "return-receipt-requested",
    "registered-mail-reply-requested-by", "mail-followup-to", "mail-reply-to", "abuse-reports-to",
    "x-complaints-to", "x-report-abuse-to", "x-beenthere", "x-original-to",
})
# a mail address as redirect and vacation :from need it (local@domain, nothing else)
MAIL_ADDRESS = re.compile(r"[^\s@<>()\",;]+@[^\s@<>()\",;]+\Z")
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")


# --- control --------------------------------------------------------------------------


def _check_require(checker: Checker, cmd: Command) -> None:
    del checker, cmd  # capabilities are checked by the validator as it reads them


def _run_stop(rt: Runtime, cmd: Command) -> None:
    raise StopScript


# --- keep, discard, redirect -----------------------------------------------------------


def is_inbox(folder: str) -> bool:
    return folder.upper() == "INBOX"


def same_folder(a: str, b: str) -> bool:
    return a == b or (is_inbox(a) and is_inbox(b))


def flag_list(items: list[str]) -> list[str]:
    """Split space-separated flag strings; duplicates (case-insensitive) dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        for flag in item.split():
            if flag.lower() not in seen:
                seen.add(flag.lower())
                out.append(flag)
    return out


def store(rt: Runtime, folder: str, tags: dict[str, object], copy: bool) -> None:
    """keep and fileinto: one store per folder (RFC 5228 2.10.3). An empty folder name is
    left to delivery, which stores into INBOX (as Pigeonhole does)."""
    if rt.reject_seen:
        raise SieveRuntimeError(
            "reject/ereject action conflicts with other action: a store delivers the message"
        )
    flags = flag_list(rt.sl(tags["flags"])) if "flags" in tags else list(rt.flags)
    rt.delivering = True
    new = FileInto(folder, tuple(flags), bool(tags.get("create")), message=rt.message_now())
    for i, old in enumerate(rt.actions):
        # storing twice into one folder stores once; the later flags win, and whether
        # the implicit keep survives is decided by the first one (as in Pigeonhole)
        if isinstance(old, FileInto) and same_folder(old.folder, folder):
            rt.actions[i] = FileInto(old.folder, new.flags, old.create or new.create,
                                     message=old.message)
            return
    rt.add(new)
    if not copy:
        rt.implicit_keep = False


def _run_keep(rt: Runtime, cmd: Command) -> None:
    store(rt, "INBOX", cmd.tags, copy=False)


def _run_discard(rt: Runtime, cmd: Command) -> None:
    rt.implicit_keep = False
    if Discard() not in rt.actions:
        rt.add(Discard())


def _check_redirect(checker: Checker, cmd: Command) -> None:
    addr = cmd.positional[0]
    assert isinstance(addr, str)
    if checker.constant(addr) and not MAIL_ADDRESS.match(addr.strip().strip("<>")):
        raise checker.error(f"specified redirect address '{addr}' is invalid", cmd)


def _run_redirect(rt: Runtime, cmd: Command) -> None:
    address = rt.s(cmd.positional[0])
    copy = bool(cmd.tags.get("copy"))
    addr = split_address(address)
    if addr is None:
        raise SieveRuntimeError(f"redirect: invalid address '{address}'")
    target = str(addr)
    if rt.reject_seen:
        raise SieveRuntimeError(
            "reject/ereject action conflicts with other action: a redirect delivers the message"
        )
    if target.lower() in {a.lower() for a in redirected_to(rt.original)}:
        # loop protection: this message already went to that address through us;
        # treated as done, like Pigeonhole's duplicate redirect
        if not copy:
            rt.implicit_keep = False
        return
    rt.delivering = True
    if any(isinstance(a, Redirect) and a.address.lower() == target.lower() for a in rt.actions):
        return  # the first redirect to a target decides about the implicit keep
    if sum(isinstance(a, Redirect) for a in rt.actions) >= rt.limits.max_redirects:
        raise LimitExceeded(
            f"number of redirect actions exceeds the limit of {rt.limits.max_redirects}"
        )
    rt.add(Redirect(target, copy, message=rt.message_now()))
    if not copy:
        rt.implicit_keep = False


# --- tests ------------------------------------------------------------------------------


def check_header_names(checker: Checker, node: Test, names: object) -> None:
    """A name no header field can have only draws a warning (the test is then false)."""
    assert isinstance(names, list)
    for name in names:
        if checker.constant(name) and not _HEADER_NAME.match(name):
            checker.warn(f"specified header field name '{name}' is invalid", node)


def _check_address(checker: Checker, t: Test) -> None:
    for name in t.positional[0]:  # type: ignore[union-attr]
        if checker.constant(name) and name.lower() not in ADDRESS_HEADERS:
            raise checker.error(
                f"specified header '{name}' is not allowed for the address test", t
            )
    check_header_names(checker, t, t.positional[0])
    headers.check(checker, t)


def _check_header(checker: Checker, t: Test) -> None:
    check_header_names(checker, t, t.positional[0])
    headers.check(checker, t)


def _check_size(checker: Checker, t: Test) -> None:
    if "size" not in t.tags:
        raise checker.error("size test needs :over or :under", t)


def address_part(addr: Address, part: str) -> str | None:
    if part == "all":
        return str(addr)
    if part == "localpart":
        return addr.localpart
    if part == "domain":
        return addr.domain
    user, sep, detail = addr.localpart.partition(SUBADDRESS_DELIMITER)
    if part == "user":
        return user
    return detail if sep else None  # RFC 5233: no detail, no match for :detail


def address_values(raw_values: list[str], part: str) -> list[str]:
    out: list[str] = []
    for raw in raw_values:
        addrs = parse_address_list(raw)
        if not addrs:
            # unparsable or empty: Pigeonhole compares the raw value for :all only
            if part == "all":
                out.append(raw)
            continue
        out.extend(v for a in addrs if (v := address_part(a, part)) is not None)
    return out


def _run_address(rt: Runtime, t: Test) -> bool:
    raw = headers.values(rt, t, rt.sl(t.positional[0]), decoded=False)
    values = address_values(raw, str(t.tags.get("part", "all")))
    return rt.match(t, values, rt.sl(t.positional[1]))


def _run_header(rt: Runtime, t: Test) -> bool:
    values = headers.values(rt, t, rt.sl(t.positional[0]), decoded=True)
    return rt.match(t, values, rt.sl(t.positional[1]))


def _run_exists(rt: Runtime, t: Test) -> bool:
    return all(headers.values(rt, t, [name], decoded=False) for name in rt.sl(t.positional[0]))


def _run_size(rt: Runtime, t: Test) -> bool:
    limit = t.positional[0]
    assert isinstance(limit, int)
    return rt.msg.size > limit if t.tags["size"] == "over" else rt.msg.size < limit


CORE = Extension(
    "",
    commands=(
        Spec("require", "command", positional=("stringlist",), check=_check_require),
        Spec("if", "command", subtests="one", block="required"),
        Spec("elsif", "command", subtests="one", block="required"),
        Spec("else", "command", block="required"),
        Spec("stop", "command", run=_run_stop),
        Spec("keep", "command", tags={"flags": TagDef("stringlist", ext="imap4flags")},
             run=_run_keep),
        Spec("discard", "command", run=_run_discard),
        Spec("redirect", "command", tags={"copy": TagDef(ext="copy")}, positional=("string",),
             check=_check_redirect, run=_run_redirect),
    ),
    tests=(
        Spec("address", "test",
             tags={**MATCHING, **ADDRESS_PART, **INDEX_TAGS, **MIME_BASIC_TAGS},
             positional=("stringlist", "stringlist"), check=_check_address, run=_run_address),
        Spec("header", "test", tags={**MATCHING, **INDEX_TAGS, **MIME_TAGS},
             positional=("stringlist", "stringlist"), check=_check_header, run=_run_header),
        Spec("exists", "test", tags=MIME_BASIC_TAGS, positional=("stringlist",),
             check=_check_header, run=_run_exists),
        Spec("size", "test", tags={"over": TagDef(slot="size"), "under": TagDef(slot="size")},
             positional=("number",), check=_check_size, run=_run_size),
        Spec("allof", "test", subtests="list",
             run=lambda rt, t: all(rt.test(x) for x in t.tests)),
        Spec("anyof", "test", subtests="list",
             run=lambda rt, t: any(rt.test(x) for x in t.tests)),
        Spec("not", "test", subtests="one", run=lambda rt, t: not rt.test(t.tests[0])),
        Spec("true", "test", run=lambda rt, t: True),
        Spec("false", "test", run=lambda rt, t: False),
    ),
)
