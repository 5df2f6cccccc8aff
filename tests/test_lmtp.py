"""LMTP delivery through the real Unix socket of a running `lmtpd serve`."""

from __future__ import annotations

import re
import smtplib
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from tests.conftest import Lmtpd, lmtp_send, to_wire, wait_for

MESSAGE = (
    b"From: Sender <sender@remote.example>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"Message-ID: <m1@remote.example>\r\n"
    b"\r\n"
    b"Hello,\r\n"
    b".a line that starts with a dot\r\n"
    b"..two dots\r\n"
    b"8-bit: caf\xc3\xa9 \xff\xfe\r\n"
    b".\r\n"  # a lone dot inside the body, not the end
    b"end\r\n"
)


def stored_files(lmtpd: Lmtpd, address: str, folder: str = "") -> list[Path]:
    base = lmtpd.maildir(address) / folder if folder else lmtpd.maildir(address)
    return sorted(p for sub in ("new", "cur") for p in (base / sub).iterdir())


def test_lhlo_advertises_required_extensions(lmtpd: Lmtpd) -> None:
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        code, _ = client.ehlo("client.example")
        assert code == 250
        for feature in ("pipelining", "enhancedstatuscodes", "8bitmime", "size"):
            assert client.has_extn(feature), feature
        assert client.esmtp_features["size"] == str(50 * 1024 * 1024)
        assert client.docmd("HELO", "x")[0] == 500
        assert client.docmd("EHLO", "x")[0] == 500
    finally:
        client.close()


def test_greeting(lmtpd: Lmtpd) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(lmtpd.socket_path)
        assert sock.recv(200) == b"220 mail.example.org LMTP ready\r\n"


def test_reply_codes_per_recipient(lmtpd: Lmtpd) -> None:
    lmtpd.add_mailbox("off@example.org")
    lmtpd.cli("mailbox", "disable", "off@example.org")
    lmtpd.add_mailbox("full@example.org")
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["full@example.org"],
              b"Subject: fill\r\n\r\n" + (b"x" * 78 + b"\r\n") * 30)
    lmtpd.cli("mailbox", "quota", "full@example.org", "1K")
    result = lmtp_send(
        lmtpd.socket_path, "s@remote.example",
        ["alice@example.org", "nobody@example.org", "off@example.org", "full@example.org",
         "someone@elsewhere.example"],
        MESSAGE,
    )
    assert result["alice@example.org"][0] == 250
    assert result["alice@example.org"][1].startswith("2.0.0 <alice@example.org> delivered")
    assert result["nobody@example.org"][0] == 550
    assert result["nobody@example.org"][1].startswith("5.1.1")
    assert result["off@example.org"][0] == 550
    assert result["off@example.org"][1].startswith("5.1.1")
    assert result["full@example.org"][0] == 552
    assert result["full@example.org"][1].startswith("5.2.2")
    assert result["someone@elsewhere.example"][0] == 550
    assert result["someone@elsewhere.example"][1].startswith("5.1.2")


def test_quota_checked_again_at_data(lmtpd: Lmtpd) -> None:
    lmtpd.add_mailbox("small@example.org", quota="4K")
    big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 100  # ~8 KB
    result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["small@example.org"], big)
    assert result["small@example.org"][0] == 552
    assert result["small@example.org"][1].startswith("5.2.2")
    assert stored_files(lmtpd, "small@example.org") == []


def test_oversized_message_gets_one_reply_per_recipient(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory({"lmtp": {"max_message_size": "10K"}})
    for name in ("a", "b", "c"):
        lmtpd.add_mailbox(f"{name}@example.org")
    lmtpd.start()
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        rcpts = ["a@example.org", "b@example.org", "c@example.org"]
        big = b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 400
        result = lmtp_send("", "s@remote.example", rcpts, big, client=client)
        assert [result[r][0] for r in rcpts] == [552, 552, 552]
        assert all(result[r][1].startswith("5.3.4") for r in rcpts)
        # The session stays in sync: the next transaction on it succeeds.
        ok = lmtp_send("", "s@remote.example", rcpts, b"Subject: small\r\n\r\nok\r\n",
                       client=client)
        assert [ok[r][0] for r in rcpts] == [250, 250, 250]
        assert client.noop()[0] == 250
    finally:
        client.quit()
    for name in ("a", "b", "c"):
        assert len(stored_files(lmtpd, f"{name}@example.org")) == 1


def test_size_parameter_over_limit_refused_at_mail(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory({"lmtp": {"max_message_size": "10K"}})
    lmtpd.start()
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        client.ehlo("x")
        code, text = client.docmd("MAIL FROM:<s@remote.example> SIZE=20000")
        assert code == 552 and text.startswith(b"5.3.4")
    finally:
        client.close()


def test_long_body_lines_are_delivered_to_every_recipient(lmtpd: Lmtpd) -> None:
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        rcpts = ["alice@example.org", "bob@example.org"]
        long_line = b"Subject: long\r\n\r\n" + b"w" * 5000 + b"\r\nafter\r\n"
        result = lmtp_send("", "s@remote.example", rcpts, long_line, client=client)
        assert [result[r][0] for r in rcpts] == [250, 250]
        assert client.noop()[0] == 250
    finally:
        client.quit()
    for rcpt in rcpts:
        [path] = stored_files(lmtpd, rcpt)
        assert path.read_bytes().endswith(b"\n\n" + b"w" * 5000 + b"\nafter\n")


def test_over_long_command_lines_are_refused_and_the_session_goes_on(lmtpd: Lmtpd) -> None:
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        client.ehlo("x")
        # Up to 4,096 octets a command line is read as usual.
        assert client.docmd("NOOP", "n" * (4096 - len("NOOP "))) == (250, b"2.0.0 OK")
        assert client.docmd("MAIL FROM:<s@remote.example>")[0] == 250
        rcpt = "RCPT TO:<" + "a" * (4096 - len("RCPT TO:<@example.org>")) + "@example.org>"
        assert client.docmd(rcpt)[0] == 550
        assert client.docmd("RSET")[0] == 250
        for length in (4097, 70_000, 1_000_000):
            code, text = client.docmd("RCPT TO:<" + "a" * length + "@example.org>")
            assert (code, text[:5]) == (500, b"5.5.2"), (length, code, text)
            code, text = client.docmd("MAIL FROM:<s@remote.example> " + "X" * length)
            assert (code, text[:5]) == (500, b"5.5.2"), (length, code, text)
        result = lmtp_send("", "s@remote.example", ["alice@example.org", "bob@example.org"],
                           b"Subject: after long commands\r\n\r\nok\r\n", client=client)
        assert [r[0] for r in result.values()] == [250, 250]
    finally:
        client.quit()


def test_every_reply_after_lhlo_has_an_enhanced_code(lmtpd: Lmtpd) -> None:
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        client.ehlo("x")
        for command in ("NOOP", "BOGUS", "DATA", "RCPT TO:<alice@example.org>",
                        "MAIL FROM:<s@x.example>", "MAIL FROM:<s@x.example>", "RSET",
                        "MAIL FROM:<>", "RCPT TO:<alice@example.org>", "VRFY x", "RSET"):
            code, text = client.docmd(command)
            assert text[:1] in (b"2", b"4", b"5") and text[1:2] == b"." , (command, code, text)
    finally:
        client.close()


def test_stored_copy_is_byte_exact_with_four_fields_on_top(lmtpd: Lmtpd) -> None:
    result = lmtp_send(lmtpd.socket_path, "sender@remote.example", ["alice@example.org"], MESSAGE)
    assert result["alice@example.org"][0] == 250
    [path] = stored_files(lmtpd, "alice@example.org")
    data = path.read_bytes()
    lines = data.split(b"\n")
    assert lines[0] == b"Return-Path: <sender@remote.example>"
    assert lines[1] == b"Delivered-To: alice@example.org"
    assert lines[2] == b"X-Original-To: alice@example.org"
    assert re.match(rb"Received: from \S+ by mail\.example\.org \(lmtpd\) with LMTP id [0-9A-F]+ "
                    rb"for <alice@example\.org>; \w{3}, \d+ \w{3} \d{4} ", lines[3]), lines[3]
    expected = MESSAGE.replace(b"\r\n", b"\n")
    assert data.split(b"\n", 4)[4] == expected
    # Dovecot-style name with both sizes, and the sizes are right.
    name = path.name
    assert f",S={len(data)}," in name
    crlf_size = len(data) + data.count(b"\n")
    assert name.endswith(f",W={crlf_size}")


def test_null_sender_and_plus_detail_and_case(lmtpd: Lmtpd) -> None:
    result = lmtp_send(lmtpd.socket_path, "", ["Alice+Lists@EXAMPLE.ORG"],
                       b"Subject: x\r\n\r\nbody\r\n")
    assert result["Alice+Lists@EXAMPLE.ORG"][0] == 250
    [path] = stored_files(lmtpd, "alice@example.org")
    assert path.read_bytes().startswith(b"Return-Path: <>\nDelivered-To: Alice+Lists@EXAMPLE.ORG")


def test_alias_to_several_mailboxes(lmtpd: Lmtpd) -> None:
    lmtpd.cli("alias", "add", "team@example.org", "alice@example.org", "bob@example.org")
    result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["team@example.org"],
                       b"Subject: team\r\n\r\nhi all\r\n")
    assert result["team@example.org"][0] == 250
    assert len(stored_files(lmtpd, "alice@example.org")) == 1
    assert len(stored_files(lmtpd, "bob@example.org")) == 1


def test_duplicate_message_id_makes_no_second_copy(lmtpd: Lmtpd) -> None:
    for _ in range(2):
        result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"], MESSAGE)
        assert result["alice@example.org"][0] == 250
    assert len(stored_files(lmtpd, "alice@example.org")) == 1
    # Another mailbox still gets its own copy of the same message.
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["bob@example.org"], MESSAGE)
    assert len(stored_files(lmtpd, "bob@example.org")) == 1


def test_mail_loop_refused(lmtpd: Lmtpd) -> None:
    looped = b"Delivered-To: alice@example.org\r\nSubject: loop\r\n\r\nagain\r\n"
    result = lmtp_send(lmtpd.socket_path, "s@remote.example",
                       ["alice@example.org", "bob@example.org"], looped)
    assert result["alice@example.org"][0] == 554
    assert result["alice@example.org"][1].startswith("5.4.6")
    assert result["bob@example.org"][0] == 250


def test_too_many_recipients(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory({"lmtp": {"max_recipients": 2}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    client = smtplib.LMTP(lmtpd.socket_path)
    try:
        client.ehlo("x")
        client.mail("s@remote.example")
        assert client.rcpt("alice@example.org")[0] == 250
        assert client.rcpt("alice@example.org")[0] == 250
        code, text = client.rcpt("alice@example.org")
        assert (code, text[:5]) == (452, b"4.5.3")
    finally:
        client.close()


def test_pipelined_transactions(lmtpd: Lmtpd) -> None:
    import socket

    body = to_wire(b"Subject: p\r\n\r\npipelined\r\n")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(lmtpd.socket_path)
        sock.settimeout(10)
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"LHLO x\r\n")
        while stream.readline()[3:4] == b"-":
            pass
        sock.sendall(b"MAIL FROM:<s@r.example>\r\nRCPT TO:<alice@example.org>\r\n"
                     b"RCPT TO:<bob@example.org>\r\nDATA\r\n")
        replies = [stream.readline() for _ in range(4)]
        assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"354"]
        sock.sendall(body + b".\r\nMAIL FROM:<s@r.example>\r\nRCPT TO:<nobody@example.org>\r\n"
                     b"RSET\r\nQUIT\r\n")
        replies = [stream.readline() for _ in range(6)]
        assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"550", b"250", b"221"]


def test_concurrent_sessions_store_every_message_once(lmtpd: Lmtpd) -> None:
    errors: list[str] = []

    def worker(n: int) -> None:
        client = smtplib.LMTP(lmtpd.socket_path)
        try:
            for i in range(50):
                msg = (f"Message-ID: <c{n}-{i}@remote.example>\r\nSubject: {n}/{i}\r\n\r\n"
                       f"body {n} {i}\r\n").encode()
                result = lmtp_send("", "s@remote.example", ["alice@example.org"], msg,
                                   client=client)
                if result["alice@example.org"][0] != 250:
                    errors.append(repr(result))
        finally:
            client.quit()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    files = stored_files(lmtpd, "alice@example.org")
    assert len(files) == 16 * 50
    subjects = {p.read_bytes().split(b"Subject: ", 1)[1].split(b"\n", 1)[0] for p in files}
    assert len(subjects) == 16 * 50
    assert lmtpd.cli("verify").returncode == 0
    show = lmtpd.cli("mailbox", "show", "alice@example.org", "--json")
    assert '"messages": 800' in show.stdout


def _uidls(index: Path) -> dict[str, str]:
    with closing(sqlite3.connect(index)) as db:
        return dict(db.execute("SELECT filename, uidl FROM messages"))


def test_reindex_restores_rows_with_same_uidls_and_keeps_accounts(lmtpd: Lmtpd) -> None:
    lmtpd.cli("alias", "add", "team@example.org", "alice@example.org")
    for i in range(5):
        lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org", "bob@example.org"],
                  f"Message-ID: <r{i}@x>\r\nSubject: {i}\r\n\r\nbody\r\n".encode())
    before = _uidls(lmtpd.index_path)
    assert len(before) == 10
    with closing(sqlite3.connect(lmtpd.index_path)) as db, db:
        accounts = db.execute("SELECT * FROM mailboxes ORDER BY id").fetchall()
        aliases = db.execute("SELECT * FROM aliases").fetchall()
        db.execute("DELETE FROM messages")
    assert lmtpd.cli("verify", check=False).returncode == 1
    result = lmtpd.cli("reindex")
    assert "10 rows added" in result.stdout
    assert _uidls(lmtpd.index_path) == before
    with closing(sqlite3.connect(lmtpd.index_path)) as db:
        assert db.execute("SELECT * FROM mailboxes ORDER BY id").fetchall() == accounts
        assert db.execute("SELECT * FROM aliases").fetchall() == aliases
    assert lmtpd.cli("verify").returncode == 0
    # Delivery keeps working after the rebuild.
    ok = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                   b"Subject: after\r\n\r\nx\r\n")
    assert ok["alice@example.org"][0] == 250


def test_reindex_after_restoring_an_older_index(lmtpd: Lmtpd, tmp_path: Path) -> None:
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
              b"Message-ID: <old@x>\r\n\r\nold\r\n")
    backup = tmp_path / "backup.sqlite3"
    db, copy = sqlite3.connect(lmtpd.index_path), sqlite3.connect(backup)
    db.backup(copy)
    copy.execute("PRAGMA journal_mode=DELETE")
    db.close()
    copy.close()
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
              b"Message-ID: <new@x>\r\n\r\nnew\r\n")
    before = _uidls(lmtpd.index_path)
    lmtpd.stop()
    for suffix in ("-wal", "-shm"):
        Path(str(lmtpd.index_path) + suffix).unlink(missing_ok=True)
    lmtpd.index_path.write_bytes(backup.read_bytes())
    verify = lmtpd.cli("verify", check=False)
    assert verify.returncode == 1 and "file-without-row" in verify.stdout
    lmtpd.cli("reindex")
    assert _uidls(lmtpd.index_path) == before
    assert lmtpd.cli("verify").returncode == 0


def test_verify_reports_row_without_file_and_size_drift(lmtpd: Lmtpd) -> None:
    for i in range(2):
        lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                  f"Message-ID: <v{i}@x>\r\n\r\nbody {i}\r\n".encode())
    first, second = stored_files(lmtpd, "alice@example.org")
    first.unlink()
    with closing(sqlite3.connect(lmtpd.index_path)) as db, db:
        db.execute("UPDATE messages SET size = size + 1 WHERE filename = ?", (second.name,))
    result = lmtpd.cli("verify", check=False)
    assert result.returncode == 1
    assert "row-without-file" in result.stdout
    assert "size-drift" in result.stdout


def test_one_greppable_log_line_per_recipient_outcome(lmtpd: Lmtpd) -> None:
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org", "nobody@example.org"],
              MESSAGE)

    def lines(prefix: str) -> list[str]:
        return [line for line in lmtpd.log_lines if prefix in line]

    assert wait_for(lambda: lines("delivered rcpt=<alice@example.org>"))
    [delivered] = lines("delivered rcpt=<alice@example.org>")
    assert re.search(r"delivered rcpt=<alice@example\.org> mailbox=alice@example\.org "
                     r"folder=INBOX size=\d+ msgid=<m1@remote\.example> id=[0-9A-F]+ "
                     r"delay=\d+\.\d{3}$", delivered), delivered
    [rejected] = lines("rejected rcpt=<nobody@example.org>")
    assert 'status=5.1.1 reason="<nobody@example.org> no such mailbox"' in rejected
    assert "secret" not in lmtpd.log()
