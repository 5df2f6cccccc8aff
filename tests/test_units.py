"""Pure parts tested without sockets: addresses, sizes, replies, DATA assembly, file names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmtpd import status
from lmtpd.addresses import AddressError, MailboxRef, Verdict, parse_address, resolve
from lmtpd.config import ConfigError, from_dict, parse_duration, parse_size
from lmtpd.data_reader import DataReader
from lmtpd.lmtp import _SIMPLE_PATH, LmtpSession
from lmtpd.spool import Spool
from lmtpd.store import maildir


@pytest.mark.parametrize("bad", [
    "a\x00b@example.org", "../x@example.org", "a/b@example.org", "a\\b@example.org",
    "x@..", "x@a..b", "x@-a.org", "", "@", "a@", "@b.org", "a b@c.org", "a@b@c.org",
    "a\n@b.org", "a\x7f@b.org", ".a@b.org", "a.@b.org", "x" * 65 + "@b.org",
])
def test_parse_address_refuses_unsafe(bad: str) -> None:
    with pytest.raises(AddressError):
        parse_address(bad)


def test_parse_address_normalises() -> None:
    assert str(parse_address("<Alice.B+x@Example.ORG>")) == "alice.b+x@example.org"


@given(st.text(max_size=40))
def test_parsed_addresses_never_escape(text: str) -> None:
    try:
        address = parse_address(text + "@example.org")
    except AddressError:
        return
    assert "/" not in address.local and ".." not in address.local
    assert "\x00" not in address.local and address.local not in (".", "..")


def _resolver(mailboxes: dict[str, bool], aliases: dict[str, list[str]]):
    ids = {a: i for i, a in enumerate(mailboxes)}

    def find(address: str) -> MailboxRef | None:
        return MailboxRef(ids[address], address, mailboxes[address]) if address in mailboxes \
            else None

    def run(rcpt: str):
        return resolve(rcpt, local_domains=["example.org"], delimiter="+", find_mailbox=find,
                       find_alias=lambda a: aliases.get(a, []))
    return run


def test_resolution_order_like_postfix_virtual() -> None:
    run = _resolver({"a@example.org": True, "a+x@example.org": True, "off@example.org": False},
                    {"team@example.org": ["a@example.org", "off@example.org"],
                     "loop@example.org": ["loop@example.org"],
                     "@example.org": ["a@example.org"]})
    assert run("A+X@Example.org").mailboxes[0].address == "a+x@example.org"
    detail = run("a+y@example.org")
    assert detail.mailboxes[0].address == "a@example.org" and detail.detail == "y"
    assert run("off@example.org").verdict is Verdict.DISABLED
    assert [m.address for m in run("team@example.org").mailboxes] == ["a@example.org"]
    assert run("anything@example.org").mailboxes[0].address == "a@example.org"  # catch-all
    assert run("loop@example.org").verdict is Verdict.UNKNOWN
    assert run("x@other.org").verdict is Verdict.NOT_LOCAL
    assert run("bad/../x@example.org").verdict is Verdict.INVALID


@pytest.mark.parametrize(("text", "value"), [
    ("25M", 25 * 1024**2), ("512K", 512 * 1024), ("1G", 1024**3), ("100", 100), (7, 7),
    ("2m", 2 * 1024**2),
])
def test_sizes(text: object, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["lots", "-1", "1T", True, 1.5])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_durations() -> None:
    assert parse_duration("24h") == 86400
    assert parse_duration("0") == 0
    assert parse_duration(90) == 90


def test_config_error_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"lmtp\.socket_mode"):
        from_dict({"lmtp": {"socket_mode": "999"}})
    with pytest.raises(ConfigError, match=r"sieve\.submission"):
        from_dict({"sieve": {"submission": "ftp://x"}})


@pytest.mark.parametrize(("line", "expected"), [
    ("250 OK", "250 2.0.0 OK"),
    ("500 Error: bad syntax", "500 5.5.2 bad syntax"),
    ("503 Error: need MAIL command", "503 5.5.1 need MAIL command"),
    ("552 Error: message size exceeds fixed maximum message size",
     "552 5.3.4 message size exceeds fixed maximum message size"),
    ("250 2.1.0 sender ok", "250 2.1.0 sender ok"),
    ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
])
def test_enhanced_codes_added(line: str, expected: str) -> None:
    assert status.with_enhanced_code(line) == expected


def test_reject_reason_stays_on_one_line() -> None:
    assert str(status.rejected("no\r\nthanks")) == "550 5.7.1 no thanks"


def _assemble(lines: list[bytes], max_size: int = 0) -> tuple[DataReader, bytes]:
    spool = Spool(threshold=1 << 20)
    reader = DataReader(spool, max_size)
    for line in lines:  # each line a piece, as the DATA loop may hand them out
        if reader.feed(line):
            break
    return reader, spool.getvalue()


def test_data_reader_unstuffs_and_converts_line_ends() -> None:
    reader, body = _assemble([b"Subject: x\r\n", b"\r\n", b"..dot\r\n", b"...\r\n", b"a\rb\r\n",
                              b".\r\n", b"ignored\r\n"])
    assert body == b"Subject: x\n\n.dot\n..\na\rb\n"
    assert not reader.too_big


def test_data_reader_marks_oversize_and_keeps_reading_to_the_dot() -> None:
    reader, body = _assemble([b"x" * 50 + b"\r\n"] * 10 + [b".\r\n"], max_size=100)
    assert reader.too_big and body == b""


def test_spool_spills_to_a_file_past_the_threshold(tmp_path) -> None:
    spool = Spool(threshold=10, directory=tmp_path)
    spool.write(b"Subject: a\n\nbody\n")
    spool.write(b"more\n")
    assert spool.spooled and spool.fileno() is not None
    assert spool.getvalue() == b"Subject: a\n\nbody\nmore\n"
    assert spool.header_bytes() == b"Subject: a\n"
    assert spool.crlf_size() == len(spool.getvalue()) + 4
    assert list(tmp_path.iterdir()) == []  # unlinked at once: nothing left after a crash
    spool.close()


def test_uidl_comes_from_the_file_name() -> None:
    name = "1795774328.M892820P8266Q1.vm,S=233,W=242:2,S"
    assert maildir.uidl_from_filename(name) == "1795774328.M892820P8266Q1.vm"
    assert maildir.uidl_from_filename("123.abc,U=00000001deadbeef,S=1") == "00000001deadbeef"
    long_name = "1." + "h" * 100
    assert len(maildir.uidl_from_filename(long_name)) == 40
    assert maildir.sizes_from_filename(name) == (233, 242)


def test_write_message_is_durable_and_named_like_dovecot(tmp_path) -> None:
    maildir.ensure_maildir(tmp_path, fsync=True)
    body = Spool.from_bytes(b"Subject: x\n\nhello\n")
    stored = maildir.write_message(tmp_path, b"Delivered-To: a@b\n", body,
                                   flags=["\\Seen", "\\Flagged"])
    assert stored.subdir == "cur" and stored.filename.endswith(":2,FS")
    path = tmp_path / "cur" / stored.filename
    data = path.read_bytes()
    assert data == b"Delivered-To: a@b\nSubject: x\n\nhello\n"
    assert stored.size == len(data) and stored.crlf_size == len(data) + 4
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("folder", ["../x", "a/../b", "", "a//b", ".hidden", "a\x00b", "a\\b"])
def test_unsafe_folder_names_refused(folder: str) -> None:
    with pytest.raises(maildir.FolderError):
        maildir.folder_dirname(folder)


def test_folder_names_map_to_maildirplusplus() -> None:
    assert maildir.folder_dirname("Lists/python") == ".Lists.python"
    assert maildir.folder_name(".Lists.python") == "Lists/python"


def test_tcp_listener_connections_get_nodelay() -> None:
    """asyncio turns Nagle off only on sockets created with the TCP protocol number; with Nagle
    on, each short POP3/LMTP reply after a long one waits for the client's delayed ACK."""
    import asyncio
    import socket

    from lmtpd.config import tcp_listener
    from tests.conftest import free_port

    async def main() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        port = free_port()
        listener = tcp_listener(f"127.0.0.1:{port}")
        server = await asyncio.start_server(handle, sock=listener)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, 5)
        writer.close()
        server.close()
        return value

    assert asyncio.run(main()) != 0


_path_atoms = st.sampled_from(["a", "Bob", "x-y", "o'neil", "a+tag", "1", "_", "=", "{}", "", ".",
                               "é", " ", '"q"', "(c)", "\\", "@"])
_path_domains = st.sampled_from(["example.org", "x", "a-b.c", "", "-", "a..b", "[1.2.3.4]",
                                 "ex ample.org", "example.org."])


@given(st.lists(_path_atoms, min_size=1, max_size=3), _path_domains,
       st.sampled_from(["", " ", "  ", "\t", " (c) "]),
       st.sampled_from(["", "SIZE=100", " BODY=8BITMIME", "x", " SIZE=1 "]))
def test_simple_path_matches_the_full_parser(atoms: list[str], domain: str, space: str,
                                             params: str) -> None:
    """The fast path for <dot-atom@domain> gives what email's parser gives, and leaves
    everything else to it."""
    arg = f"{space}<{'.'.join(atoms)}@{domain}>{params}"
    simple = _SIMPLE_PATH.match(arg)
    if simple is not None:
        assert (simple.group(1), simple.group(2)) == LmtpSession._parse_path(arg)


def test_simple_path_takes_what_mtas_send() -> None:
    for arg, expected in [("<alice@example.org>", ("alice@example.org", "")),
                          ("<a.b+tag@mx.example.org> SIZE=2048 BODY=8BITMIME",
                           ("a.b+tag@mx.example.org", "SIZE=2048 BODY=8BITMIME"))]:
        simple = _SIMPLE_PATH.match(arg)
        assert simple is not None and (simple.group(1), simple.group(2)) == expected
        assert LmtpSession._parse_path(arg) == expected


def test_accounts_generation_is_seen_through_the_mapping(tmp_path) -> None:
    """A bump made by another process (the CLI) shows in a server's mapping at once."""
    import subprocess
    import sys

    from lmtpd.store import generation

    index = tmp_path / "index.sqlite"
    mapped = generation.Generation.open(index)
    assert mapped is not None and mapped.read() == 0
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from lmtpd.store import generation; generation.bump(Path(sys.argv[1]))",
                    str(index)], check=True)
    assert mapped.read() == 1
    generation.bump(index)
    assert mapped.read() == 2
    assert generation.Generation.open(index).read() == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("params", [{}, {"salt_len": 8}, {"hash_len": 16}, {"parallelism": 8},
                                    {"memory_cost": 8, "time_cost": 1, "parallelism": 1}])
def test_argon2id_check_agrees_with_argon2_cffi(params: dict[str, int]) -> None:
    """libsodium checks argon2id hashes now; whatever parameters argon2-cffi wrote, both
    must agree on right and wrong passwords (and on non-ASCII ones)."""
    from argon2 import PasswordHasher

    from lmtpd import auth

    made = PasswordHasher(**params).hash("pässwörd 1")
    assert auth.verify_password(made, "pässwörd 1")
    assert auth.verify_password("{ARGON2ID}" + made, "pässwörd 1")
    assert not auth.verify_password(made, "pässwörd 2")
    assert not auth.verify_password(made, "")
    assert not auth.verify_password(made[:-4] + "AAAA", "pässwörd 1")  # another digest
    assert not auth.verify_password("$argon2id$v=19$m=65536,t=3,p=4$broken", "x")
