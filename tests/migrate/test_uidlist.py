"""dovecot-uidlist parsing, Dovecot's UIDL format, and the `,U=` file names that keep it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmtpd.migrate import files
from lmtpd.migrate.uidlist import (
    DEFAULT_UIDL_FORMAT,
    UidEntry,
    UidlistError,
    format_uidl,
    parse_uidlist,
)
from lmtpd.store import maildir

V3 = """3 V1700000000 N5 G0123456789abcdef
1 :1700000001.M1P10.host,S=100,W=104
2 W200 :1700000002.M2P10.host,S=190,W=200:2,S
4 P0000abcd W10 GAABB :1700000004.M4P10.host,S=9,W=10
garbage line
5 :
"""


def test_parse_v3() -> None:
    listing = parse_uidlist(V3)
    assert (listing.version, listing.uidvalidity, listing.next_uid) == (3, 1700000000, 5)
    assert listing.guid == "0123456789abcdef"
    assert [e.uid for e in listing.entries] == [1, 2, 4, 5]
    by_base = listing.by_base()
    assert by_base["1700000002.M2P10.host,S=190,W=200"].fields == {"W": "200"}
    assert by_base["1700000004.M4P10.host,S=9,W=10"].fields["P"] == "0000abcd"


def test_parse_v1() -> None:
    listing = parse_uidlist("1 1234 3\n1 111.M1P1.h\n2 112.M2P1.h:2,S\n")
    assert (listing.version, listing.uidvalidity, listing.next_uid) == (1, 1234, 3)
    assert [e.base for e in listing.entries] == ["111.M1P1.h", "112.M2P1.h"]


@pytest.mark.parametrize("text", ["", "x y z\n", "3 N5\n", "9 V1\n", "1 abc\n"])
def test_bad_headers(text: str) -> None:
    with pytest.raises(UidlistError):
        parse_uidlist(text)


def test_default_format_is_dovecots() -> None:
    # Dovecot 2.3's `%08Xu%08Xv` gives lower-case hex (checked against a real Dovecot in
    # test_dovecot_e2e).
    entry = UidEntry(26, "x")
    assert format_uidl(DEFAULT_UIDL_FORMAT, entry, 0x6553F1A0) == "0000001a6553f1a0"


def test_p_field_wins() -> None:
    entry = UidEntry(1, "x", {"P": "old-server-uidl"})
    assert format_uidl(DEFAULT_UIDL_FORMAT, entry, 1) == "old-server-uidl"


def test_other_formats() -> None:
    entry = UidEntry(7, "170.M1P2.host,S=3:2,S", {"G": "guid7"})
    assert format_uidl("%u.%v", entry, 99) == "7.99"
    assert format_uidl("%f", entry, 99) == "170.M1P2.host,S=3"
    assert format_uidl("%g", entry, 99) == "guid7"
    assert format_uidl("%{uid}-%{uidvalidity}", entry, 99) == "7-99"
    assert format_uidl("%Uf", entry, 99) == "170.M1P2.HOST,S=3"
    with pytest.raises(ValueError):
        format_uidl("%m", entry, 99)


def source(tmp_path: Path, name: str, body: bytes = b"a\nb\n",
           subdir: str = "new") -> files.SourceMessage:
    path = tmp_path / subdir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return files.SourceMessage(path, "", subdir, len(body), path.stat().st_mtime)


@pytest.mark.parametrize("name,expected", [
    ("170.M1P2.host,S=4,W=6", "170.M1P2.host,S=4,W=6,U=0000000100000002"),
    ("170.M1P2.host,S=4,W=6:2,RS", "170.M1P2.host,S=4,W=6,U=0000000100000002:2,RS"),
    ("170.M1P2.host:2,", "170.M1P2.host,S=4,W=6,U=0000000100000002:2,"),
    ("plain-name", "plain-name,S=4,W=6,U=0000000100000002"),
    ("170.M1P2.host,S=4,W=6,U=kept", "170.M1P2.host,S=4,W=6,U=kept"),
])
def test_target_name(tmp_path: Path, name: str, expected: str) -> None:
    message = source(tmp_path, name)
    target = files.target_name(message, "0000000100000002")
    assert target == expected
    assert maildir.uidl_from_filename(target) == expected.split("U=")[1].split(":")[0]
    assert maildir.sizes_from_filename(target) == (4, 6)


def test_target_name_without_uidl_keeps_the_file_name_uidl(tmp_path: Path) -> None:
    message = source(tmp_path, "170.M1P2.host")
    target = files.target_name(message, None)
    assert maildir.uidl_from_filename(target) == maildir.uidl_from_filename(message.name)


def test_reordered_name_sorts_where_asked(tmp_path: Path) -> None:
    message = source(tmp_path, "odd-name,S=4,W=6:2,S", subdir="cur")
    base = files.ordered_base(1700000000.25, 4, 99)
    target = files.target_name(message, "uidl4", base)
    assert target == f"{base},S=4,W=6,U=uidl4:2,S"
    assert maildir.arrival_time(target, 0) == pytest.approx(1700000000.25)
    assert maildir.uidl_from_filename(target) == "uidl4"


@pytest.mark.parametrize("uidl,ok", [("abc", True), ("a,b", False), ("a:b", False),
                                     ("a/b", False), ("a b", False), ("x" * 71, False),
                                     ("ü", False), ("", False)])
def test_storable_uidls(uidl: str, ok: bool) -> None:
    assert files.uidl_storable(uidl) is ok
