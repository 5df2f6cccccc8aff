"""RFC 5293 editheader: addheader and deleteheader, on the header later tests and actions see.

As Pigeonhole does: Received and Auto-Submitted cannot be deleted, Subject can always be
changed, and our redirect loop marker can be neither added nor deleted (an attempt is
skipped, not an error). lmtpd's own trace fields (Return-Path, Delivered-To, X-Original-To,
Received) are added to the stored copy after filtering, so no script can remove them.
"""

from __future__ import annotations

import email.header
import re

from ..ast import Command
from ..message import HeaderField, decode_words
from ..runtime import Runtime, SieveRuntimeError
from ..spec import Extension, Spec, TagDef
from ..submission import REDIRECT_HEADER
from ..validator import Checker
from .core import COMPARATOR, MATCH

_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7f]+\Z")
_NEVER_DELETE = frozenset({"received", "auto-submitted", REDIRECT_HEADER.lower()})
_NEVER_ADD = frozenset({REDIRECT_HEADER.lower()})
MAX_LINE = 80  # where an added field is folded, as Pigeonhole folds it


def valid_field_name(name: str) -> bool:
    return _FIELD_NAME.match(name) is not None


def _sanitize(name: str) -> str:
    """Capitalised like "X-Spam-Level": first letter and each letter after '-'."""
    return "-".join(part[:1].upper() + part[1:] for part in name.lower().split("-"))


def fold(name: str, value: str, eol: str) -> str:
    """``Name: value`` with its line end, folded as Pigeonhole folds what it adds: once a line
    reaches 80 characters, at the start of the last run of blanks before that point, the
    blanks replaced by one tab; a line break in the value becomes such a fold too."""
    out = [f"{name}: "]
    n = len(value)
    i = start = 0
    width = len(name) + 2
    folds = 0
    while i < n:
        blank: int | None = None  # where the last run of blanks began
        newline: int | None = None  # where a line break (and the blanks before it) began
        after_blank = False
        while i < n and (blank is None or width < MAX_LINE):
            c = value[i]
            if c in " \t":
                if not after_blank:
                    blank = i
                after_blank = True
            elif c in "\r\n":
                newline = blank if after_blank else i
                break
            else:
                after_blank = False
            i += 1
            width += 1
        if i >= n:
            break
        if newline is not None:
            out += [value[start:newline], eol]
            while i < n and value[i] in " \t\r\n":
                i += 1
            if i < n:
                out.append("\t")
            start = i
        else:
            assert blank is not None
            out += [value[start:blank], eol, "\t"]
            start = blank
            while start < n and value[start] in " \t":
                start += 1
            i = max(i, start)
        folds += 1
        width = i - start
    if i != start or folds == 0:
        out += [value[start:i], eol]
    return "".join(out)


def _encode(value: str) -> str:
    if value.isascii():
        return value
    return email.header.Header(value, "utf-8").encode()


def _check_addheader(checker: Checker, cmd: Command) -> None:
    name, value = cmd.positional
    assert isinstance(name, str) and isinstance(value, str)
    if checker.constant(name):
        if not valid_field_name(name):
            raise checker.error(f"addheader command: specified field name `{name}' is invalid",
                                cmd)
        if name.lower() in _NEVER_ADD:
            checker.warn(f"addheader command: adding specified header field `{name}' is "
                         "forbidden; modification will be denied", cmd)
    if checker.constant(value):
        if "\0" in value:
            raise checker.error("addheader command: specified value is invalid "
                                "(contains NUL character)", cmd)
        if len(value.encode()) > checker.limits.max_header_size:
            raise checker.error("addheader command: specified header value is too large "
                                f"({len(value.encode())} bytes)", cmd)


def _run_addheader(rt: Runtime, cmd: Command) -> None:
    name, value = rt.s(cmd.positional[0]), rt.s(cmd.positional[1])
    if not valid_field_name(name):
        raise SieveRuntimeError(f"addheader action: specified field name `{name}' is invalid")
    if name.lower() in _NEVER_ADD:
        return  # forbidden: Pigeonhole warns and goes on
    if "\0" in value:
        raise SieveRuntimeError("addheader action: specified value is invalid "
                                "(contains NUL character)")
    if len(value.encode()) > rt.limits.max_header_size:
        raise SieveRuntimeError("addheader action: specified header value is too large")
    eol = "\r\n" if rt.msg.crlf else "\n"
    # line breaks at the end go (a text: string ends with one); blanks before them stay
    value = value.rstrip("\r\n")
    raw = fold(_sanitize(name), _encode(value), eol).encode()
    unfolded = re.sub(r"\r?\n", "", value)
    field = HeaderField(name.lower(), " " + unfolded, raw)
    fields = list(rt.msg.fields)
    if cmd.tags.get("last"):
        fields.append(field)
    else:
        fields.insert(0, field)
    rt.edit(fields)


def _check_deleteheader(checker: Checker, cmd: Command) -> None:
    if "last" in cmd.tags and "index" not in cmd.tags:
        # Pigeonhole reports this but compiles the script; :last alone changes nothing
        checker.warn("the :last tag for the deleteheader command cannot be specified without "
                     "the :index tag", cmd)
    names = cmd.positional[0]
    name = names[0] if isinstance(names, list) and len(names) == 1 else names
    if isinstance(name, str) and checker.constant(name):
        if not valid_field_name(name):
            raise checker.error(f"deleteheader command: specified field name `{name}' is "
                                "invalid", cmd)
        if name.lower() in _NEVER_DELETE:
            checker.warn(f"deleteheader command: deleting specified header field `{name}' is "
                         "forbidden; modification will be denied", cmd)


def _run_deleteheader(rt: Runtime, cmd: Command) -> None:
    names = rt.sl(cmd.positional[0])
    if len(names) != 1:
        raise SieveRuntimeError("deleteheader action: expects one field name")
    name = names[0]
    if not valid_field_name(name):
        raise SieveRuntimeError(f"deleteheader action: specified field name `{name}' is invalid")
    if name.lower() in _NEVER_DELETE:
        return  # forbidden: Pigeonhole warns and goes on
    key = name.lower()
    fields = list(rt.msg.fields)
    positions = [i for i, f in enumerate(fields) if f.name == key]
    if cmd.tags.get("last"):
        positions.reverse()
    index = cmd.tags.get("index") or 0
    patterns = rt.sl(cmd.positional[1]) if len(cmd.positional) > 1 else None
    doomed: set[int] = set()
    for count, position in enumerate(positions, start=1):
        if index and count != index:
            continue
        if patterns is not None:
            value = decode_words(fields[position].value.strip(" \t"))
            if not rt.match(cmd, [value], patterns):
                continue
        doomed.add(position)
    if doomed:
        rt.edit([f for i, f in enumerate(fields) if i not in doomed])


EDITHEADER = Extension(
    "editheader",
    commands=(
        Spec("addheader", "command", ext="editheader", tags={"last": TagDef()},
             positional=("string", "string"), check=_check_addheader, run=_run_addheader),
        Spec("deleteheader", "command", ext="editheader",
             tags={**COMPARATOR, **MATCH, "index": TagDef("number"), "last": TagDef()},
             positional=("stringlist",), optional=("stringlist",),
             check=_check_deleteheader, run=_run_deleteheader),
    ),
)
