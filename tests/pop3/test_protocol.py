"""The POP3 state machine without sockets: every command, state and error path."""

from __future__ import annotations

import base64

import pytest

from lmtpd.pop3 import protocol
from lmtpd.pop3.protocol import (
    Authenticate,
    Connection,
    LoginFailure,
    MessageInfo,
    NeedData,
    Retrieve,
    Send,
    StartTls,
    State,
    Update,
    UsageError,
)

MAILDROP = [MessageInfo("uid-a", 120), MessageInfo("uid-b", 3000), MessageInfo("uid-c", 45)]


def feed(conn: Connection, data: bytes) -> protocol.Event:
    conn.receive_data(data)
    return conn.next_event()


def reply(conn: Connection, line: str) -> bytes:
    event = feed(conn, line.encode() + b"\r\n")
    assert isinstance(event, Send), event
    return event.data


def logged_in(maildrop: list[MessageInfo] = MAILDROP, **kwargs: object) -> Connection:
    conn = Connection(plaintext_allowed=True, **kwargs)  # type: ignore[arg-type]
    assert reply(conn, "USER alice@example.org").startswith(b"+OK")
    event = feed(conn, b"PASS secret\r\n")
    assert isinstance(event, Authenticate)
    assert conn.login_succeeded(maildrop).data.startswith(b"+OK")
    return conn


def plain(user: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


# -- AUTHORIZATION ------------------------------------------------------------------------


def test_greeting_names_the_host() -> None:
    assert Connection(hostname="mx.example").greeting() == b"+OK mx.example POP3 ready.\r\n"


def test_need_data_until_a_full_line() -> None:
    conn = Connection()
    assert isinstance(feed(conn, b"CA"), NeedData)
    assert isinstance(feed(conn, b"PA"), NeedData)
    assert isinstance(feed(conn, b"\r\n"), Send)


def test_capa_before_login_lists_everything() -> None:
    conn = Connection(tls_available=True, plaintext_allowed=True)
    data = reply(conn, "CAPA")
    lines = data.decode().split("\r\n")
    assert lines[0].startswith("+OK")
    assert lines[-2:] == [".", ""]
    for cap in ("TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "AUTH-RESP-CODE",
                "PIPELINING", "STLS", "IMPLEMENTATION lmtpd"):
        assert cap in lines


def test_capa_hides_plaintext_mechanisms_when_they_are_refused() -> None:
    lines = reply(Connection(tls_available=True), "CAPA").decode().split("\r\n")
    assert "USER" not in lines and "SASL PLAIN" not in lines
    assert "STLS" in lines


def test_capa_without_tls_has_no_stls() -> None:
    assert b"STLS" not in reply(Connection(plaintext_allowed=True), "CAPA")
    assert b"STLS" not in reply(Connection(tls_available=True, tls_active=True), "CAPA")


def test_capa_after_login_keeps_transaction_capabilities() -> None:
    conn = logged_in(tls_available=True)
    data = reply(conn, "capa")
    assert b"TOP\r\n" in data and b"UIDL\r\n" in data
    assert b"USER" not in data and b"STLS" not in data


def test_user_pass_success() -> None:
    conn = Connection(plaintext_allowed=True)
    assert reply(conn, "USER alice@example.org") == b"+OK Send the password.\r\n"
    event = feed(conn, b"PASS  two words \r\n")
    assert event == Authenticate("alice@example.org", " two words ", "USER")
    assert "two words" not in repr(event)
    data = conn.login_succeeded(MAILDROP).data
    assert data == b"+OK Logged in, 3 messages (3165 octets).\r\n"
    assert conn.state is State.TRANSACTION
    assert conn.username == "alice@example.org"


def test_commands_are_case_insensitive() -> None:
    conn = Connection(plaintext_allowed=True)
    assert reply(conn, "user alice").startswith(b"+OK")
    assert isinstance(feed(conn, b"pass x\r\n"), Authenticate)


def test_bare_lf_line_ends_are_accepted() -> None:
    conn = Connection(plaintext_allowed=True)
    assert reply(conn, "NOOP\n".rstrip("\n")).startswith(b"-ERR")  # NOOP needs a login
    assert isinstance(feed(conn, b"USER a\nPASS b\n"), Send)
    assert isinstance(conn.next_event(), Authenticate)


def test_pass_without_user_is_an_error() -> None:
    conn = Connection(plaintext_allowed=True)
    assert reply(conn, "PASS secret").startswith(b"-ERR")


def test_pass_must_follow_user_directly() -> None:
    conn = Connection(plaintext_allowed=True)
    reply(conn, "USER alice")
    reply(conn, "CAPA")
    assert reply(conn, "PASS secret").startswith(b"-ERR")


def test_user_without_name() -> None:
    assert reply(Connection(plaintext_allowed=True), "USER").startswith(b"-ERR")


def test_failed_login_answers_auth_code_and_stays_in_authorization() -> None:
    conn = Connection(plaintext_allowed=True)
    reply(conn, "USER alice")
    feed(conn, b"PASS wrong\r\n")
    assert conn.login_failed(LoginFailure.INVALID).data.startswith(b"-ERR [AUTH] ")
    assert conn.state is State.AUTHORIZATION
    assert conn.username is None
    assert reply(conn, "USER alice").startswith(b"+OK")


@pytest.mark.parametrize(("reason", "code"), [
    (LoginFailure.INVALID, b"-ERR [AUTH] "),
    (LoginFailure.LOCKED, b"-ERR [AUTH] "),
    (LoginFailure.IN_USE, b"-ERR [IN-USE] "),
    (LoginFailure.TEMPORARY, b"-ERR [SYS/TEMP] "),
])
def test_login_failure_codes(reason: LoginFailure, code: bytes) -> None:
    conn = Connection(plaintext_allowed=True)
    reply(conn, "USER alice")
    feed(conn, b"PASS x\r\n")
    assert conn.login_failed(reason).data.startswith(code)


def test_plaintext_refused_before_tls() -> None:
    conn = Connection(tls_available=True, plaintext_allowed=False)
    assert reply(conn, "USER alice").startswith(b"-ERR [AUTH] Plaintext")
    assert reply(conn, f"AUTH PLAIN {plain('alice', 'secret')}").startswith(b"-ERR [AUTH]")
    assert reply(conn, "AUTH PLAIN").startswith(b"-ERR [AUTH]")


def test_auth_plain_initial_response() -> None:
    conn = Connection(plaintext_allowed=True)
    event = feed(conn, f"AUTH PLAIN {plain('alice@example.org', 'pw with space')}\r\n".encode())
    assert event == Authenticate("alice@example.org", "pw with space", "PLAIN")


def test_auth_plain_continuation() -> None:
    conn = Connection(plaintext_allowed=True)
    assert reply(conn, "AUTH plain") == b"+ \r\n"
    event = feed(conn, plain("alice", "secret").encode() + b"\r\n")
    assert event == Authenticate("alice", "secret", "PLAIN")


def test_auth_plain_continuation_may_exceed_255_octets() -> None:
    conn = Connection(plaintext_allowed=True)
    reply(conn, "AUTH PLAIN")
    long_password = "p" * 600
    event = feed(conn, plain("alice", long_password).encode() + b"\r\n")
    assert isinstance(event, Authenticate)
    assert event.password == long_password


def test_auth_plain_cancel() -> None:
    conn = Connection(plaintext_allowed=True)
    reply(conn, "AUTH PLAIN")
    assert reply(conn, "*").startswith(b"-ERR")
    assert conn.state is State.AUTHORIZATION
    assert reply(conn, "CAPA").startswith(b"+OK")


def test_auth_plain_with_matching_authzid() -> None:
    conn = Connection(plaintext_allowed=True)
    event = feed(conn, f"AUTH PLAIN {plain('bob', 'pw', authzid='bob')}\r\n".encode())
    assert event == Authenticate("bob", "pw", "PLAIN")


def test_auth_plain_refuses_another_authzid() -> None:
    conn = Connection(plaintext_allowed=True)
    assert reply(conn, f"AUTH PLAIN {plain('bob', 'pw', authzid='root')}").startswith(
        b"-ERR [AUTH]")


@pytest.mark.parametrize("response", ["!!!notbase64", "=", base64.b64encode(b"no-nuls").decode(),
                                      base64.b64encode(b"\0\0pw").decode()])
def test_auth_plain_malformed(response: str) -> None:
    conn = Connection(plaintext_allowed=True)
    assert reply(conn, f"AUTH PLAIN {response}").startswith(b"-ERR")
    assert conn.state is State.AUTHORIZATION


def test_auth_plain_undecodable_password_becomes_empty() -> None:
    conn = Connection(plaintext_allowed=True)
    blob = base64.b64encode(b"\0alice\0\xff\xfe").decode()
    event = feed(conn, f"AUTH PLAIN {blob}\r\n".encode())
    assert event == Authenticate("alice", "", "PLAIN")


def test_auth_without_argument_lists_mechanisms() -> None:
    assert reply(Connection(plaintext_allowed=True), "AUTH") == b"+OK Supported mechanisms " \
        b"follow.\r\nPLAIN\r\n.\r\n"
    assert reply(Connection(), "AUTH").endswith(b"follow.\r\n.\r\n")


def test_auth_unknown_mechanism() -> None:
    assert reply(Connection(plaintext_allowed=True), "AUTH CRAM-MD5").startswith(b"-ERR")


def test_stls_flow_discards_pipelined_plaintext() -> None:
    conn = Connection(tls_available=True)
    event = feed(conn, b"STLS\r\nUSER injected\r\nPASS x\r\n")
    assert isinstance(event, StartTls)
    assert event.reply.startswith(b"+OK")
    with pytest.raises(UsageError):
        conn.next_event()
    conn.tls_started(plaintext_allowed=True)
    assert conn.tls_active
    assert isinstance(conn.next_event(), NeedData)  # the injected lines are gone
    assert b"STLS" not in reply(conn, "CAPA")
    assert reply(conn, "STLS").startswith(b"-ERR")
    assert reply(conn, "USER alice").startswith(b"+OK")


def test_stls_forgets_user_given_before() -> None:
    conn = Connection(tls_available=True, plaintext_allowed=True)
    reply(conn, "USER alice")
    assert isinstance(feed(conn, b"STLS\r\n"), StartTls)
    conn.tls_started()
    assert reply(conn, "PASS x").startswith(b"-ERR")


def test_stls_unavailable_and_failed() -> None:
    assert reply(Connection(), "STLS").startswith(b"-ERR")
    conn = Connection(tls_available=True)
    feed(conn, b"STLS\r\n")
    conn.tls_failed()
    assert conn.state is State.CLOSED


def test_quit_in_authorization_closes_without_update() -> None:
    conn = Connection()
    event = feed(conn, b"QUIT\r\n")
    assert event == Send(b"+OK Logging out.\r\n", close=True)
    assert conn.state is State.CLOSED
    with pytest.raises(UsageError):
        conn.next_event()


def test_transaction_commands_before_login() -> None:
    conn = Connection()
    for command in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP"):
        assert reply(conn, command) == b"-ERR Not logged in.\r\n"


def test_unknown_command_continues() -> None:
    conn = Connection()
    assert reply(conn, "XYZZY") == b"-ERR Unknown command.\r\n"
    assert reply(conn, "APOP alice 0123") == b"-ERR Unknown command.\r\n"
    assert reply(conn, "\xe9t\xe9") .startswith(b"-ERR")
    assert reply(conn, "CAPA").startswith(b"+OK")


def test_line_too_long_is_discarded_and_session_continues() -> None:
    conn = Connection(plaintext_allowed=True)
    long_line = b"USER " + b"a" * 300 + b"\r\n"
    assert feed(conn, long_line) == Send(b"-ERR Line too long.\r\n")
    assert reply(conn, "CAPA").startswith(b"+OK")


def test_line_of_exactly_255_octets_is_accepted() -> None:
    conn = Connection(plaintext_allowed=True)
    line = b"USER " + b"a" * (255 - 7) + b"\r\n"
    assert len(line) == 255
    assert feed(conn, line).data.startswith(b"+OK")  # type: ignore[union-attr]
    assert feed(conn, b"USER " + b"a" * 249 + b"\r\n").data.startswith(  # type: ignore[union-attr]
        b"-ERR Line too long")


def test_endless_line_without_lf_is_bounded() -> None:
    conn = Connection()
    for _ in range(100):
        assert isinstance(feed(conn, b"x" * 4096), NeedData)
        assert len(conn._lines) < 4096 + protocol.MAX_COMMAND_LINE
    assert feed(conn, b"tail\r\nNOOP\r\n") == Send(b"-ERR Line too long.\r\n")
    assert conn.next_event() == Send(b"-ERR Not logged in.\r\n")


def test_too_many_errors_close_the_session() -> None:
    conn = Connection(max_errors=3)
    assert reply(conn, "BAD1").startswith(b"-ERR")
    assert reply(conn, "BAD2").startswith(b"-ERR")
    event = feed(conn, b"BAD3\r\n")
    assert isinstance(event, Send) and event.close
    assert b"Too many" in event.data
    assert conn.state is State.CLOSED


def test_failed_logins_count_as_errors() -> None:
    conn = Connection(plaintext_allowed=True, max_errors=2)
    reply(conn, "USER a")
    feed(conn, b"PASS b\r\n")
    assert not conn.login_failed(LoginFailure.INVALID).close
    reply(conn, "USER a")
    feed(conn, b"PASS b\r\n")
    assert conn.login_failed(LoginFailure.INVALID).close


def test_pending_outcome_is_enforced() -> None:
    conn = Connection(plaintext_allowed=True)
    with pytest.raises(UsageError):
        conn.login_succeeded([])
    reply(conn, "USER a")
    feed(conn, b"PASS b\r\n")
    with pytest.raises(UsageError):
        conn.next_event()
    with pytest.raises(UsageError):
        conn.tls_started()


def test_timeout_and_shutdown_replies() -> None:
    assert Connection().timed_out() == Send(b"-ERR Disconnected for inactivity.\r\n", close=True)
    assert Connection().shutting_down().data.startswith(b"-ERR [SYS/TEMP]")


# -- TRANSACTION --------------------------------------------------------------------------


def test_stat_list_uidl() -> None:
    conn = logged_in()
    assert reply(conn, "STAT") == b"+OK 3 3165\r\n"
    assert reply(conn, "LIST") == (b"+OK 3 messages (3165 octets)\r\n"
                                   b"1 120\r\n2 3000\r\n3 45\r\n.\r\n")
    assert reply(conn, "LIST 2") == b"+OK 2 3000\r\n"
    assert reply(conn, "UIDL") == b"+OK Unique-ID listing follows.\r\n1 uid-a\r\n2 uid-b\r\n" \
        b"3 uid-c\r\n.\r\n"
    assert reply(conn, "UIDL 3") == b"+OK 3 uid-c\r\n"


def test_empty_maildrop() -> None:
    conn = logged_in([])
    assert reply(conn, "STAT") == b"+OK 0 0\r\n"
    assert reply(conn, "LIST") == b"+OK 0 messages (0 octets)\r\n.\r\n"
    assert reply(conn, "UIDL") == b"+OK Unique-ID listing follows.\r\n.\r\n"
    assert reply(conn, "RETR 1") == b"-ERR No such message.\r\n"


@pytest.mark.parametrize("arg", ["0", "4", "-1", "x", "1x", "99999999999999999999"])
def test_bad_message_numbers(arg: str) -> None:
    conn = logged_in(max_errors=50)
    for command in ("LIST", "UIDL", "RETR", "DELE"):
        assert reply(conn, f"{command} {arg}").startswith(b"-ERR")
    assert reply(conn, f"TOP {arg} 1").startswith(b"-ERR")
    assert conn.state is State.TRANSACTION


def test_extra_arguments_are_refused() -> None:
    conn = logged_in(max_errors=50)
    for command in ("STAT 1", "LIST 1 2", "RETR", "RETR 1 2", "TOP 1", "TOP 1 x", "DELE",
                    "RSET now", "NOOP x", "QUIT now", "CAPA x"):
        assert reply(conn, command).startswith(b"-ERR"), command


def test_retr_and_top_events() -> None:
    conn = logged_in()
    event = feed(conn, b"RETR 2\r\n")
    assert event == Retrieve(2, None, b"+OK 3000 octets\r\n")
    event = feed(conn, b"TOP 1 0\r\n")
    assert event == Retrieve(1, 0, b"+OK Top of message follows.\r\n")
    assert feed(conn, b"TOP 3 5\r\n") == Retrieve(3, 5, b"+OK Top of message follows.\r\n")


def test_dele_rset_and_deleted_messages() -> None:
    conn = logged_in()
    assert reply(conn, "DELE 2") == b"+OK Marked to be deleted.\r\n"
    assert reply(conn, "DELE 2") == b"-ERR Message is deleted.\r\n"
    assert reply(conn, "STAT") == b"+OK 2 165\r\n"
    assert reply(conn, "LIST") == b"+OK 2 messages (165 octets)\r\n1 120\r\n3 45\r\n.\r\n"
    assert b"uid-b" not in reply(conn, "UIDL")
    for command in ("RETR 2", "TOP 2 0", "LIST 2", "UIDL 2"):
        assert reply(conn, command).startswith(b"-ERR")
    assert reply(conn, "RSET") == b"+OK 3 messages (3165 octets).\r\n"
    assert reply(conn, "LIST 2") == b"+OK 2 3000\r\n"


def test_quit_in_transaction_enters_update() -> None:
    conn = logged_in()
    reply(conn, "DELE 3")
    reply(conn, "DELE 1")
    event = feed(conn, b"QUIT\r\n")
    assert event == Update((1, 3))
    assert conn.state is State.UPDATE
    with pytest.raises(UsageError):
        conn.next_event()
    final = conn.update_finished(deleted=2, failed=0)
    assert final == Send(b"+OK Logging out, 2 messages deleted.\r\n", close=True)
    assert conn.state is State.CLOSED


def test_quit_reports_failed_deletes() -> None:
    conn = logged_in()
    reply(conn, "DELE 1")
    feed(conn, b"QUIT\r\n")
    final = conn.update_finished(deleted=0, failed=1)
    assert final.data.startswith(b"-ERR [SYS/TEMP]") and final.close


def test_authorization_commands_after_login() -> None:
    conn = logged_in(tls_available=True)
    for command in ("USER a", "PASS b", "AUTH PLAIN", "STLS"):
        assert reply(conn, command) == b"-ERR Already logged in.\r\n"


def test_noop_and_pipelined_commands() -> None:
    conn = logged_in()
    conn.receive_data(b"NOOP\r\nSTAT\r\nLIST 1\r\n")
    assert conn.next_event() == Send(b"+OK\r\n")
    assert conn.next_event() == Send(b"+OK 3 3165\r\n")
    assert conn.next_event() == Send(b"+OK 1 120\r\n")
    assert isinstance(conn.next_event(), NeedData)


def test_multiline_dot_stuffs() -> None:
    assert protocol.multiline(b"+OK\r\n", [".x", "y"]) == b"+OK\r\n..x\r\ny\r\n.\r\n"


def test_small_syntax_errors() -> None:
    conn = Connection(plaintext_allowed=True, tls_available=True)
    assert reply(conn, "AUTH PLAIN a b").startswith(b"-ERR Syntax")
    assert reply(conn, "STLS now").startswith(b"-ERR")
    assert conn.message_unavailable().data.startswith(b"-ERR [SYS/TEMP]")
