"""Dovecot's `dovecot-uidlist` and the POP3 UIDLs it implies.

Dovecot keeps one `dovecot-uidlist` per Maildir folder. Version 3 (Dovecot 1.1 and later):

    3 V<uidvalidity> N<next uid> G<guid> ...
    <uid> [<key><value> ...] :<file name>

Version 1 (Dovecot 1.0, Courier's courierimapuiddb): `1 <uidvalidity> <next uid>`, then
`<uid> <file name>`. With the default `pop3_uidl_format = %08Xu%08Xv` a message's UIDL is its
UID and the folder's UIDVALIDITY in eight hex digits each, unless its line carries a `P<uidl>`
field (a UIDL migrated into Dovecot earlier), which Dovecot serves instead. Dovecot's `X`
modifier writes lower-case hex digits (Dovecot 2.3 serves `000000016b0961a5`), so we do too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

UIDLIST_NAME = "dovecot-uidlist"
DEFAULT_UIDL_FORMAT = "%08Xu%08Xv"


class UidlistError(ValueError):
    pass


@dataclass(frozen=True)
class UidEntry:
    uid: int
    filename: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return base_name(self.filename)


@dataclass(frozen=True)
class Uidlist:
    version: int
    uidvalidity: int
    next_uid: int
    guid: str = ""
    entries: tuple[UidEntry, ...] = ()

    def by_base(self) -> dict[str, UidEntry]:
        """Entries keyed by file base name (the part before `:`): flags change the rest of a
        name when a client reads or flags a message, the base never changes."""
        return {entry.base: entry for entry in self.entries}


def base_name(filename: str) -> str:
    return filename.split(":", 1)[0]


def read_uidlist(folder: Path) -> Uidlist | None:
    """The uidlist of a Maildir folder, or None when Dovecot never wrote one."""
    try:
        text = (folder / UIDLIST_NAME).read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None
    return parse_uidlist(text)


def parse_uidlist(text: str) -> Uidlist:
    lines = text.splitlines()
    if not lines:
        raise UidlistError("empty dovecot-uidlist")
    header = lines[0].split()
    if not header or not header[0].isdigit():
        raise UidlistError("dovecot-uidlist: no version in the header line")
    version = int(header[0])
    guid = ""
    if version == 1:
        if len(header) < 3 or not (header[1].isdigit() and header[2].isdigit()):
            raise UidlistError("dovecot-uidlist v1: expected `1 <uidvalidity> <next uid>`")
        uidvalidity, next_uid = int(header[1]), int(header[2])
    elif version in (2, 3):
        keys = {item[0]: item[1:] for item in header[1:] if item}
        try:
            uidvalidity, next_uid = int(keys["V"]), int(keys.get("N", "0"))
        except (KeyError, ValueError):
            raise UidlistError("dovecot-uidlist: no V<uidvalidity> in the header") from None
        guid = keys.get("G", "")
    else:
        raise UidlistError(f"dovecot-uidlist: unknown version {version}")
    entries = [entry for line in lines[1:] if (entry := _parse_entry(line, version))]
    return Uidlist(version, uidvalidity, next_uid, guid, tuple(entries))


def _parse_entry(line: str, version: int) -> UidEntry | None:
    uid_text, _, rest = line.partition(" ")
    if not uid_text.isdigit() or not rest:
        return None  # a torn last line of a file being rewritten; Dovecot skips it too
    if version == 3:
        if rest.startswith(":"):
            return UidEntry(int(uid_text), rest[1:])
        extensions, found, filename = rest.partition(" :")
        if not found:
            return None
        fields = {item[0]: item[1:] for item in extensions.split() if item}
        return UidEntry(int(uid_text), filename, fields)
    # v1: `<uid> <file name>`; v2 put a flags field before the name.
    return UidEntry(int(uid_text), rest.rsplit(" ", 1)[-1])


_VARIABLE = re.compile(r"%(0?)(\d*)([XxLU]?)(\{[a-z_]+\}|[a-zA-Z%])")
_LONG_NAMES = {"{uid}": "u", "{uidvalidity}": "v", "{filename}": "f", "{guid}": "g"}


def format_uidl(fmt: str, entry: UidEntry, uidvalidity: int, mailbox_guid: str = "") -> str:
    """Expand a `pop3_uidl_format` for one uidlist entry, as Dovecot would; a `P<uidl>` field
    wins. Supported variables: %u (UID), %v (UIDVALIDITY), %f (file base name), %g (GUID);
    modifiers `0`, a width, `X` (lower-case hex, as Dovecot), `L`/`U` (case). %m (header
    MD5) needs the message and is not supported: ValueError."""
    if entry.fields.get("P"):
        return entry.fields["P"]

    def expand(match: re.Match[str]) -> str:
        zero, width, modifier, name = match.groups()
        name = _LONG_NAMES.get(name, name)
        if name == "%":
            return "%"
        value: int | str
        if name == "u":
            value = entry.uid
        elif name == "v":
            value = uidvalidity
        elif name == "f":
            value = entry.base
        elif name == "g":
            value = entry.fields.get("G", "") or mailbox_guid
        else:
            raise ValueError(f"pop3_uidl_format variable %{name} is not supported")
        if isinstance(value, int) and modifier in ("X", "x"):
            text = format(value, "x")
        else:
            text = str(value)
        if modifier == "L":
            text = text.lower()
        elif modifier == "U":
            text = text.upper()
        if width:
            text = text.rjust(int(width), "0" if zero else " ")
        return text

    return _VARIABLE.sub(expand, fmt)
