"""The socketmap and policy protocols without sockets: bytes in, requests out, replies as
bytes; split and pipelined input, and malformed input of every kind."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmtpd.addresses import Verdict
from lmtpd.postfix.lookups import RecipientCheck, policy_action
from lmtpd.postfix.policy import MAX_LINE, MAX_REQUEST, PolicyReader, encode_action
from lmtpd.postfix.socketmap import (
    MAX_REQUEST as MAX_SOCKETMAP,
)
from lmtpd.postfix.socketmap import (
    BadRequest,
    Broken,
    Lookup,
    Reply,
    SocketmapReader,
    Status,
    netstring,
)

# -- socketmap ------------------------------------------------------------------------------


def test_requests_framed_and_split_anywhere() -> None:
    wire = netstring(b"mailbox alice@example.org") + netstring(b"domain Example.ORG")
    for cut in range(len(wire) + 1):
        reader = SocketmapReader()
        events = reader.feed(wire[:cut]) + reader.feed(wire[cut:])
        assert events == [Lookup("mailbox", "alice@example.org"),
                          Lookup("domain", "Example.ORG")], cut


def test_one_byte_at_a_time() -> None:
    reader = SocketmapReader()
    events = []
    for byte in netstring(b"alias info@example.org"):
        events += reader.feed(bytes([byte]))
    assert events == [Lookup("alias", "info@example.org")]


def test_key_keeps_its_spaces() -> None:
    [event] = SocketmapReader().feed(netstring(b"mailbox a b@example.org"))
    assert event == Lookup("mailbox", "a b@example.org")


@pytest.mark.parametrize("payload", [b"mailbox", b"", b" alice@example.org"])
def test_payload_without_map_and_key_is_refused_and_the_connection_goes_on(
        payload: bytes) -> None:
    reader = SocketmapReader()
    events = reader.feed(netstring(payload) + netstring(b"domain example.org"))
    assert isinstance(events[0], BadRequest)
    assert events[1] == Lookup("domain", "example.org")
    assert not reader.broken


@pytest.mark.parametrize("wire", [
    b"GET / HTTP/1.0\r\n\r\n",  # not a length
    b"5:hello;",  # no comma after the payload
    b":hello,",  # no length
    b"-5:hello,",
    b"12345678:",  # longer than any request may be
    b"99999:" + b"x" * 10,
])
def test_bytes_that_are_no_netstring_break_the_connection(wire: bytes) -> None:
    reader = SocketmapReader()
    events = reader.feed(wire)
    assert len(events) == 1 and isinstance(events[0], Broken), events
    assert reader.broken
    assert reader.feed(netstring(b"domain example.org")) == []  # nothing after it


def test_a_request_before_the_garbage_is_still_answered() -> None:
    reader = SocketmapReader()
    events = reader.feed(netstring(b"domain example.org") + b"x:")
    assert events[0] == Lookup("domain", "example.org")
    assert isinstance(events[1], Broken)


def test_request_size_is_bounded_before_buffering() -> None:
    reader = SocketmapReader()
    events = reader.feed(b"%d:" % (MAX_SOCKETMAP + 1))
    assert isinstance(events[0], Broken) and "at most" in events[0].reason
    # The largest allowed request is fine.
    key = b"k" * (MAX_SOCKETMAP - len(b"mailbox "))
    assert SocketmapReader().feed(netstring(b"mailbox " + key)) == [
        Lookup("mailbox", key.decode())]


def test_undecodable_key_is_kept_for_a_not_found() -> None:
    [event] = SocketmapReader().feed(netstring(b"mailbox \xff@example.org"))
    assert isinstance(event, Lookup) and event.map == "mailbox"


@pytest.mark.parametrize(("reply", "wire"), [
    (Reply(Status.OK, "mail/example.org/alice/"), b"26:OK mail/example.org/alice/,"),
    (Reply(Status.NOTFOUND), b"9:NOTFOUND ,"),
    (Reply(Status.TEMP, "busy"), b"9:TEMP busy,"),
    (Reply(Status.PERM, "bad"), b"8:PERM bad,"),
])
def test_replies_are_netstrings(reply: Reply, wire: bytes) -> None:
    assert reply.encode() == wire


@given(st.lists(st.tuples(st.sampled_from(["domain", "mailbox", "alias"]),
                          st.text(min_size=0, max_size=40)), max_size=5),
       st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_any_split_of_any_requests(requests: list[tuple[str, str]], cuts: list[int]) -> None:
    wire = b"".join(netstring(f"{name} {key}".encode()) for name, key in requests)
    reader = SocketmapReader()
    events = []
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(wire)), len(wire)]:
        events += reader.feed(wire[start:cut])
        start = cut
    assert events == [Lookup(name, key) for name, key in requests]


# -- policy ---------------------------------------------------------------------------------

REQUEST = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
           b"client_address=192.0.2.1\nsender=carol@example.com\n"
           b"recipient=alice@example.org\nsize=12345\n\n")


def test_policy_request_split_anywhere() -> None:
    for cut in range(len(REQUEST) + 1):
        reader = PolicyReader()
        [request] = reader.feed(REQUEST[:cut]) + reader.feed(REQUEST[cut:])
        assert request.get("recipient") == "alice@example.org"
        assert request.size == 12345 and not request.problem


def test_many_requests_on_one_connection() -> None:
    reader = PolicyReader()
    requests = reader.feed(REQUEST * 3 + REQUEST.replace(b"size=12345\n", b""))
    assert [r.size for r in requests] == [12345, 12345, 12345, 0]


def test_crlf_lines_and_values_with_equals_signs() -> None:
    [request] = PolicyReader().feed(b"request=smtpd_access_policy\r\nccert_subject=CN=a=b\r\n"
                                    b"\r\n")
    assert request.get("ccert_subject") == "CN=a=b" and not request.problem


@pytest.mark.parametrize("size", [b"", b"-1", b"12k", b"1e3"])
def test_size_that_is_no_number_counts_as_zero(size: bytes) -> None:
    [request] = PolicyReader().feed(REQUEST.replace(b"size=12345", b"size=" + size))
    assert request.size == 0


@pytest.mark.parametrize(("line", "problem"), [
    (b"no equals sign", "expected name=value"),
    (b"=value without a name", "expected name=value"),
])
def test_malformed_line_spoils_only_its_request(line: bytes, problem: str) -> None:
    reader = PolicyReader()
    requests = reader.feed(REQUEST.replace(b"size=12345\n", line + b"\n") + REQUEST)
    assert requests[0].problem == problem
    assert not requests[1].problem and requests[1].size == 12345


def test_empty_request_is_malformed() -> None:
    [request] = PolicyReader().feed(b"\n")
    assert request.problem == "empty request"


def test_overlong_line_is_dropped_without_buffering_it() -> None:
    reader = PolicyReader()
    assert reader.feed(b"recipient=" + b"a" * (MAX_LINE * 3)) == []
    assert len(reader._buffer) <= MAX_LINE
    requests = reader.feed(b"b\nsize=1\n\n" + REQUEST)
    assert requests[0].problem == "attribute line too long"
    assert "recipient" not in requests[0].attributes
    assert not requests[1].problem  # in step again


def test_overlarge_request_is_refused_and_the_next_one_is_fine() -> None:
    reader = PolicyReader()
    filler = b"".join(b"x%d=%s\n" % (n, b"v" * 1000) for n in range(MAX_REQUEST // 1000 + 2))
    requests = reader.feed(filler + b"\n" + REQUEST)
    assert requests[0].problem == "request too large"
    assert not requests[1].problem


def test_actions_are_one_line_each() -> None:
    assert encode_action("DUNNO") == b"action=DUNNO\n\n"
    assert encode_action("550 5.1.1 <a@b>:\nuser\r\nunknown") == (
        b"action=550 5.1.1 <a@b>: user unknown\n\n")


@pytest.mark.parametrize(("check", "action"), [
    (RecipientCheck(Verdict.NOT_LOCAL, local_domain=False), "DUNNO"),
    (RecipientCheck(Verdict.INVALID, local_domain=False), "DUNNO"),
    (RecipientCheck(Verdict.INVALID, local_domain=True), "550 5.1.1 <r@x>: user unknown"),
    (RecipientCheck(Verdict.UNKNOWN, True), "550 5.1.1 <r@x>: user unknown"),
    (RecipientCheck(Verdict.DISABLED, True), "550 5.1.1 <r@x>: user unknown"),
    (RecipientCheck(Verdict.OK, True, left_out=("gone@x",)), "550 5.1.1 <r@x>: user unknown"),
    (RecipientCheck(Verdict.OK, True, full=("a@x",)), "552 5.2.2 <r@x>: mailbox full"),
    (RecipientCheck(Verdict.OK, True), "DUNNO"),
])
def test_policy_decisions(check: RecipientCheck, action: str) -> None:
    assert policy_action("r@x", check) == action

