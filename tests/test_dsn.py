"""DSN (RFC 3461) over LMTP: LHLO advertises it, MAIL takes RET and ENVID, RCPT takes NOTIFY
and ORCPT, a malformed one gets 501 5.5.4, and after DATA there is exactly one reply per
accepted recipient whatever was refused. Each copy carries X-Original-To (the ORCPT address,
else the RCPT address) and `lmtpd trace` shows it. Against a running `lmtpd serve`."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from lmtpd import dsn
from tests.conftest import Lmtpd, RawLmtp
from tests.pop3.conftest import add_mailboxes, message_files

_numbers = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lmtpd]:
    instance = Lmtpd(tmp_path_factory.mktemp("dsn"))
    add_mailboxes(instance, "alice@example.org", "bob@example.org")
    instance.start()
    yield instance
    instance.stop()


def stored_copy(server: Lmtpd, address: str, message_id: str) -> bytes:
    [copy] = [data for data in (p.read_bytes() for p in message_files(server, address))
              if f"Message-ID: <{message_id}>".encode() in data]
    return copy


def transaction(server: Lmtpd, mail: str, rcpts: list[str]) -> tuple[bytes, list[bytes], str]:
    """MAIL, RCPTs, and DATA if any was accepted: the MAIL reply, the RCPT replies, and the
    Message-ID sent. Exactly one final reply per accepted RCPT must come, then nothing more:
    the NOOP sent next gets the next reply."""
    message_id = f"dsn-{next(_numbers)}@remote.example"
    client = RawLmtp(server.socket_path)
    try:
        assert b"\r\n250-DSN\r\n" in client.command("LHLO client.example")
        mail_reply = client.command(mail)
        if not mail_reply.startswith(b"250"):
            return mail_reply, [], message_id
        rcpt_replies = [client.command(rcpt) for rcpt in rcpts]
        accepted = sum(r.startswith(b"250") for r in rcpt_replies)
        if accepted:
            assert client.command("DATA").startswith(b"354")
            client.send(f"Message-ID: <{message_id}>\r\nSubject: dsn\r\n\r\nbody\r\n.\r\n"
                        .encode())
            finals = [client.reply() for _ in range(accepted)]
            assert all(f.startswith(b"250 2.0.0") for f in finals), finals
        assert client.command("NOOP") == b"250 2.0.0 OK\r\n"
        return mail_reply, rcpt_replies, message_id
    finally:
        client.close()


@pytest.mark.parametrize("params", [
    "RET=FULL", "RET=hdrs", "ENVID=QQ314159", "ENVID=a+2Bb+3Dc", "RET=HDRS ENVID=x",
    "ret=full envid=lower-case-keywords", "BODY=8BITMIME RET=FULL SIZE=100",
])
def test_mail_dsn_parameters_are_accepted(server: Lmtpd, params: str) -> None:
    mail_reply, rcpt_replies, _ = transaction(
        server, f"MAIL FROM:<s@remote.example> {params}", ["RCPT TO:<alice@example.org>"])
    assert mail_reply.startswith(b"250 2.1.0"), mail_reply
    assert rcpt_replies[0].startswith(b"250 2.1.5")


@pytest.mark.parametrize(("params", "reply"), [
    ("RET=ALL", b"501 5.5.4"), ("RET=", b"501 5.5.4"), ("RET", b"501 5.5.4"),
    ("RET=FULL RET=HDRS", b"501 5.5.4"), ("ENVID=", b"501 5.5.4"),
    ("ENVID=a=b", b"501 5.5.4"), ("ENVID=+ZZ", b"501 5.5.4"), ("ENVID=+0D+0A", b"501 5.5.4"),
    ("ENVID=" + "x" * 101, b"501 5.5.4"),
    # RCPT's parameters, and unknown ones, are unknown to MAIL: answered as before.
    ("NOTIFY=NEVER", b"555 5.5.4"), ("ORCPT=rfc822;a@b.example", b"555 5.5.4"),
    ("FOO=BAR", b"555 5.5.4"),
])
def test_malformed_or_misplaced_mail_parameters(server: Lmtpd, params: str,
                                                reply: bytes) -> None:
    mail_reply, _, _ = transaction(server, f"MAIL FROM:<s@remote.example> {params}", [])
    assert mail_reply.startswith(reply), mail_reply
    # The session goes on: a transaction after the refusal is delivered.
    _, rcpt_replies, _ = transaction(server, "MAIL FROM:<s@remote.example>",
                                     ["RCPT TO:<alice@example.org>"])
    assert rcpt_replies[0].startswith(b"250")


@pytest.mark.parametrize(("params", "original"), [
    ("NOTIFY=NEVER", "alice@example.org"),
    ("NOTIFY=SUCCESS,FAILURE,DELAY", "alice@example.org"),
    ("notify=failure,delay", "alice@example.org"),
    ("ORCPT=rfc822;info+2Bsales@example.org", "info+sales@example.org"),
    ("ORCPT=RFC822;Info@Example.ORG", "Info@Example.ORG"),
    ("ORCPT=utf-8;j\\x{F6}rg@example.org", "jörg@example.org"),
    ("ORCPT=x-other;something", "alice@example.org"),
    ("NOTIFY=SUCCESS ORCPT=rfc822;list@example.net", "list@example.net"),
])
def test_rcpt_dsn_parameters_are_accepted(server: Lmtpd, params: str, original: str) -> None:
    _, rcpt_replies, message_id = transaction(server, "MAIL FROM:<s@remote.example>", [
        f"RCPT TO:<alice@example.org> {params}", "RCPT TO:<bob@example.org>"])
    assert [r[:9] for r in rcpt_replies] == [b"250 2.1.5"] * 2, rcpt_replies
    head = stored_copy(server, "alice@example.org", message_id).split(b"\n\n")[0]
    assert f"\nX-Original-To: {original}\n".encode() in head + b"\n"
    assert b"\nX-Original-To: bob@example.org\n" in stored_copy(
        server, "bob@example.org", message_id)


@pytest.mark.parametrize(("params", "reply"), [
    ("NOTIFY=NEVER,SUCCESS", b"501 5.5.4"), ("NOTIFY=SOMETIMES", b"501 5.5.4"),
    ("NOTIFY=", b"501 5.5.4"), ("NOTIFY", b"501 5.5.4"),
    ("NOTIFY=SUCCESS,SUCCESS", b"501 5.5.4"), ("NOTIFY=SUCCESS NOTIFY=FAILURE", b"501 5.5.4"),
    ("ORCPT=rfc822", b"501 5.5.4"), ("ORCPT=;a@b.example", b"501 5.5.4"),
    ("ORCPT=rfc822;", b"501 5.5.4"), ("ORCPT=rfc822;+ZZ@b.example", b"501 5.5.4"),
    ("ORCPT=rfc822;a+0D+0AX-Injected:+20yes@b.example", b"501 5.5.4"),
    ("ORCPT=rfc822;" + "x" * 500 + "@b.example", b"501 5.5.4"),
    ("ORCPT=utf-8;a\\x{D800}@b.example", b"501 5.5.4"),
    ("ORCPT=utf-8;a\\x{0D}\\x{0A}X-Injected:yes@b.example", b"501 5.5.4"),
    ("ORCPT=rfc822;a@b.example ORCPT=rfc822;c@d.example", b"501 5.5.4"),
    # MAIL's parameters, and unknown ones, are unknown to RCPT: answered as before.
    ("RET=FULL", b"555 5.5.4"), ("ENVID=x", b"555 5.5.4"), ("FOO=BAR", b"555 5.5.4"),
])
def test_malformed_or_misplaced_rcpt_parameters_get_one_reply_each(
        server: Lmtpd, params: str, reply: bytes) -> None:
    """The refused recipient gets its reply at RCPT and none after DATA; the others get
    exactly one each."""
    _, rcpt_replies, message_id = transaction(server, "MAIL FROM:<s@remote.example>", [
        "RCPT TO:<bob@example.org>", f"RCPT TO:<alice@example.org> {params}",
        "RCPT TO:<alice@example.org> NOTIFY=FAILURE"])
    assert rcpt_replies[0].startswith(b"250") and rcpt_replies[2].startswith(b"250")
    assert rcpt_replies[1].startswith(reply), rcpt_replies[1]
    assert b"X-Injected" not in stored_copy(server, "alice@example.org", message_id)
    stored_copy(server, "bob@example.org", message_id)


def test_x_original_to_keeps_the_detail_and_trace_shows_it(server: Lmtpd) -> None:
    _, rcpt_replies, message_id = transaction(server, "MAIL FROM:<s@remote.example>", [
        "RCPT TO:<Alice+Lists@example.org>",
        "RCPT TO:<bob@example.org> ORCPT=rfc822;team+2Bdev@example.org"])
    assert all(r.startswith(b"250") for r in rcpt_replies)
    assert b"\nX-Original-To: Alice+Lists@example.org\n" in stored_copy(
        server, "alice@example.org", message_id)
    assert b"\nX-Original-To: team+dev@example.org\n" in stored_copy(
        server, "bob@example.org", message_id)
    rows = json.loads(server.cli("trace", message_id, "--json").stdout)
    assert {(r["recipient"], r["original_to"]) for r in rows} == {
        ("Alice+Lists@example.org", "Alice+Lists@example.org"),
        ("bob@example.org", "team+dev@example.org")}
    text = server.cli("trace", message_id).stdout
    assert "X-Original-To): team+dev@example.org" in text


@pytest.mark.parametrize(("text", "decoded"), [
    ("abc", "abc"), ("a+2Bb", "a+b"), ("a+3Db", "a=b"), ("+C3+A9", "é"), ("+2b", "+"),
])
def test_xtext_decoding(text: str, decoded: str) -> None:
    assert dsn.rcpt_params([("ORCPT", f"rfc822;{text}")]).original == decoded


def test_split_params_keeps_the_others_in_order() -> None:
    rest, taken = dsn.split_params("SIZE=10 notify=NEVER BODY=8BITMIME ORCPT=rfc822;A@B")
    assert rest == "SIZE=10 BODY=8BITMIME"
    assert taken == [("NOTIFY", "NEVER"), ("ORCPT", "rfc822;A@B")]
    assert dsn.split_params("") == ("", [])
    assert dsn.split_params("NOTIFY") == ("", [("NOTIFY", None)])


def test_sieve_tests_x_original_to_at_delivery(server: Lmtpd, tmp_path_factory: Any) -> None:
    """A script sees X-Original-To at delivery as it will in the stored copy (and in a
    `lmtpd sieve replay` over it)."""
    add_mailboxes(server, "carol@example.org")
    script = tmp_path_factory.mktemp("sieve") / "info.sieve"
    script.write_text('require "fileinto";\n'
                      'if header :is "X-Original-To" "info@example.org" { fileinto "Info"; }\n')
    server.cli("sieve", "set", "carol@example.org", str(script))
    _, _, via_info = transaction(server, "MAIL FROM:<s@remote.example>", [
        "RCPT TO:<carol@example.org> ORCPT=rfc822;info@example.org"])
    _, _, direct = transaction(server, "MAIL FROM:<s@remote.example>",
                               ["RCPT TO:<carol@example.org>"])
    info = server.maildir("carol@example.org") / ".Info" / "new"
    [filed] = [p.read_bytes() for p in info.iterdir()]
    assert f"<{via_info}>".encode() in filed
    assert stored_copy(server, "carol@example.org", direct)
