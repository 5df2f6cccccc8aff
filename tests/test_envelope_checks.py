"""What lmtpd copies from the envelope into header fields cannot carry a header of the
sender's choosing; non-ASCII addresses need SMTPUTF8; the loop check reads folded fields.
Over the socket of a running `lmtpd serve`."""

from __future__ import annotations

import pytest

from tests.conftest import Lmtpd, RawLmtp, lmtp_send
from tests.test_lmtp import stored_files

GOOD_MESSAGE = b"Subject: after the refusal\r\n\r\nfine\r\n.\r\n"


def open_session(lmtpd: Lmtpd) -> RawLmtp:
    client = RawLmtp(lmtpd.socket_path)
    assert client.command("LHLO client.example").startswith(b"250")
    return client


def deliver_good_message(client: RawLmtp) -> None:
    """A transaction that must succeed on the same connection after a refusal."""
    assert client.command("RSET").startswith(b"250")
    assert client.command("MAIL FROM:<s@remote.example>").startswith(b"250 2.1.0")
    assert client.command("RCPT TO:<alice@example.org>").startswith(b"250 2.1.5")
    assert client.command("DATA").startswith(b"354")
    client.send(GOOD_MESSAGE)
    assert client.reply().startswith(b"250 2.0.0 <alice@example.org> delivered")


@pytest.mark.parametrize("path", [
    b'<"a\rX-Injected: yes"@b.example>',
    b'<"a\x00X-Injected: yes"@b.example>',
    b"<a\rX-Injected:yes@b.example>",
])
def test_cr_or_nul_in_the_sender_is_refused(lmtpd: Lmtpd, path: bytes) -> None:
    client = open_session(lmtpd)
    try:
        reply = client.command(b"MAIL FROM:" + path)
        assert reply.startswith(b"501 5.1.7"), reply
        # No MAIL was taken: a RCPT now needs one.
        assert client.command("RCPT TO:<alice@example.org>").startswith(b"503")
        deliver_good_message(client)
    finally:
        client.close()
    [path_] = stored_files(lmtpd, "alice@example.org")
    assert b"X-Injected" not in path_.read_bytes()


@pytest.mark.parametrize("path", [
    b'<"alice\rX-Injected: yes"@example.org>',
    b'<"alice\x00"@example.org>',
])
def test_cr_or_nul_in_a_recipient_is_refused(lmtpd: Lmtpd, path: bytes) -> None:
    client = open_session(lmtpd)
    try:
        assert client.command("MAIL FROM:<s@remote.example>").startswith(b"250")
        reply = client.command(b"RCPT TO:" + path)
        assert reply.startswith(b"501 5.1.7"), reply
        # The transaction goes on with the recipients that were accepted.
        assert client.command("RCPT TO:<bob@example.org>").startswith(b"250")
        assert client.command("DATA").startswith(b"354")
        client.send(GOOD_MESSAGE)
        assert client.reply().startswith(b"250 2.0.0 <bob@example.org>")
        assert client.command("NOOP") == b"250 2.0.0 OK\r\n"  # no second final reply
    finally:
        client.close()
    assert stored_files(lmtpd, "alice@example.org") == []


def test_a_utf8_sender_needs_smtputf8(lmtpd: Lmtpd) -> None:
    client = open_session(lmtpd)
    try:
        reply = client.command("MAIL FROM:<jörg@bücher.example>")
        assert reply.startswith(b"553 5.6.7"), reply
        assert client.command("MAIL FROM:<jörg@bücher.example> SMTPUTF8").startswith(b"250")
        assert client.command("RCPT TO:<alice@example.org>").startswith(b"250")
        assert client.command("DATA").startswith(b"354")
        client.send(GOOD_MESSAGE)
        assert client.reply().startswith(b"250 2.0.0")
    finally:
        client.close()
    [path] = stored_files(lmtpd, "alice@example.org")
    assert path.read_bytes().startswith("Return-Path: <jörg@bücher.example>\n".encode())


def test_a_utf8_recipient_needs_smtputf8(lmtpd: Lmtpd) -> None:
    client = open_session(lmtpd)
    try:
        assert client.command("MAIL FROM:<s@remote.example>").startswith(b"250")
        reply = client.command("RCPT TO:<jörg@example.org>")
        assert reply.startswith(b"553 5.6.7"), reply
        assert client.command("RSET").startswith(b"250")
        assert client.command("MAIL FROM:<s@remote.example> SMTPUTF8").startswith(b"250")
        # With SMTPUTF8 the address is looked up like any other; mailbox names are ASCII.
        assert client.command("RCPT TO:<jörg@example.org>").startswith(b"550 5.1.3")
    finally:
        client.close()


def test_invalid_utf8_in_a_path_is_refused(lmtpd: Lmtpd) -> None:
    client = open_session(lmtpd)
    try:
        reply = client.command(b"MAIL FROM:<j\xf6rg@example.net> SMTPUTF8")
        assert reply.startswith(b"501 5.1.7"), reply
        deliver_good_message(client)
    finally:
        client.close()


@pytest.mark.parametrize("field", [
    b"Delivered-To:\r\n alice@example.org",
    b"Delivered-To:\r\n\t<alice@example.org>",
    b"delivered-to: \r\n   ALICE@example.org",
])
def test_a_folded_delivered_to_naming_the_recipient_is_a_loop(lmtpd: Lmtpd,
                                                              field: bytes) -> None:
    message = b"Subject: loop\r\n" + field + b"\r\nX-Other: x\r\n\r\nagain\r\n"
    result = lmtp_send(lmtpd.socket_path, "s@remote.example",
                       ["alice@example.org", "bob@example.org"], message)
    assert result["alice@example.org"][0] == 554
    assert result["alice@example.org"][1].startswith("5.4.6")
    assert result["bob@example.org"][0] == 250
    assert stored_files(lmtpd, "alice@example.org") == []
