"""The ManageSieve session without sockets: bytes in, events and bytes out."""

from __future__ import annotations

import base64

import pytest

from lmtpd.managesieve import operations as op
from lmtpd.managesieve import protocol, wire
from lmtpd.managesieve.protocol import Capabilities, Connection, Failure, LoginFailure, Result
from lmtpd.scripts import sieve_capability
from lmtpd.sieve import SUPPORTED_EXTENSIONS

PLAIN = base64.b64encode(b"\0alice@example.org\0secret").decode()


def connection(**options: object) -> Connection:
    settings: dict[str, object] = {"plaintext_allowed": True, "max_script_size": 1024}
    settings.update(options)
    return Connection(Capabilities(sieve=sieve_capability(), max_redirects=4),
                      **settings)  # type: ignore[arg-type]


def feed(conn: Connection, data: bytes) -> protocol.Event:
    conn.receive_data(data)
    return conn.next_event()


def sent(event: protocol.Event) -> bytes:
    assert isinstance(event, protocol.Send), event
    return event.data


def logged_in(**options: object) -> Connection:
    conn = connection(**options)
    event = feed(conn, f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode())
    assert isinstance(event, protocol.Authenticate)
    assert sent(conn.login_succeeded(event.username)) == b'OK "Logged in."\r\n'
    return conn


def perform(conn: Connection, data: bytes) -> op.Operation:
    event = feed(conn, data)
    assert isinstance(event, protocol.Perform), event
    return event.operation


def test_greeting_lists_every_supported_extension_and_plain_only_where_allowed() -> None:
    greeting = connection().greeting()
    sieve_line = next(line for line in greeting.split(b"\r\n") if line.startswith(b'"SIEVE"'))
    offered = set(sieve_line.split(b'"')[3].decode().split())
    assert offered == set(SUPPORTED_EXTENSIONS) - {"comparator-i;octet",
                                                   "comparator-i;ascii-casemap"}
    assert b'"SASL" "PLAIN"\r\n' in greeting
    assert b'"VERSION" "1.0"\r\n' in greeting
    assert b'"IMPLEMENTATION" "lmtpd"\r\n' in greeting
    assert greeting.endswith(b'OK "lmtpd ready."\r\n')
    assert b"STARTTLS" not in greeting
    locked = connection(plaintext_allowed=False, tls_available=True).greeting()
    assert b'"SASL" ""\r\n' in locked and b'"STARTTLS"\r\n' in locked


def test_authenticate_with_initial_response() -> None:
    conn = connection()
    event = feed(conn, f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode())
    assert event == protocol.Authenticate("alice@example.org", "secret", "PLAIN")
    assert "secret" not in repr(event)


def test_authenticate_with_continuation_and_a_literal_response() -> None:
    conn = connection()
    assert sent(feed(conn, b'AUTHENTICATE "PLAIN"\r\n')) == b'""\r\n'
    event = feed(conn, b"{%d+}\r\n%s\r\n" % (len(PLAIN), PLAIN.encode()))
    assert event == protocol.Authenticate("alice@example.org", "secret", "PLAIN")


def test_authenticate_cancelled_and_refused_logins_stay_unauthenticated() -> None:
    conn = connection()
    sent(feed(conn, b'AUTHENTICATE "PLAIN"\r\n'))
    assert sent(feed(conn, b'"*"\r\n')).startswith(b"NO ")
    event = feed(conn, f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode())
    assert isinstance(event, protocol.Authenticate)
    assert sent(conn.login_failed(LoginFailure.INVALID)) == b'NO "Authentication failed."\r\n'
    assert sent(feed(conn, b"LISTSCRIPTS\r\n")).startswith(b"NO ")
    feed(conn, f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode())
    assert sent(conn.login_failed(LoginFailure.TEMPORARY)).startswith(b"NO (TRYLATER)")


def test_plaintext_refused_where_not_allowed() -> None:
    conn = connection(plaintext_allowed=False)
    reply = sent(feed(conn, f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode()))
    assert reply.startswith(b"NO (ENCRYPT-NEEDED)")


def test_an_authorization_identity_of_someone_else_is_refused() -> None:
    blob = base64.b64encode(b"bob@example.org\0alice@example.org\0secret").decode()
    reply = sent(feed(connection(), f'AUTHENTICATE "PLAIN" "{blob}"\r\n'.encode()))
    assert reply.startswith(b"NO ")


def test_starttls_then_capabilities_again() -> None:
    conn = connection(tls_available=True, plaintext_allowed=False)
    event = feed(conn, b"STARTTLS\r\nCAPABILITY\r\n")
    assert isinstance(event, protocol.StartTls)
    reply = sent(conn.tls_started(plaintext_allowed=True))
    assert b'"SASL" "PLAIN"\r\n' in reply and b"STARTTLS" not in reply
    # What came with STARTTLS, before the handshake, was dropped.
    assert isinstance(conn.next_event(), protocol.NeedData)
    assert sent(feed(conn, b"STARTTLS\r\n")).startswith(b"NO ")


def test_starttls_without_a_certificate() -> None:
    assert sent(feed(connection(), b"STARTTLS\r\n")).startswith(b"NO ")


def test_putscript_with_both_literal_forms_and_in_pieces() -> None:
    conn = logged_in()
    assert perform(conn, b'PUTSCRIPT "a" {5+}\r\nkeep;\r\n') == op.PutScript("a", "keep;")
    assert sent(conn.completed(Result())) == b'OK "PUTSCRIPT completed."\r\n'
    conn.receive_data(b'PUTSCRIPT "b" {6}\r\nke')
    assert isinstance(conn.next_event(), protocol.NeedData)
    operation = perform(conn, b"ep;\n\r\n")
    assert operation == op.PutScript("b", "keep;\n")


def test_quoted_strings_with_escapes() -> None:
    conn = logged_in()
    assert perform(conn, b'GETSCRIPT "a\\"b\\\\c"\r\n') == op.GetScript('a"b\\c')


def test_compile_error_is_no_with_the_position() -> None:
    conn = logged_in()
    perform(conn, b'CHECKSCRIPT {4+}\r\nkeep\r\n')
    reply = sent(conn.completed(Result(Failure.INVALID, "line 1, column 5: expected ';'")))
    assert reply == b'NO "line 1, column 5: expected \';\'"\r\n'


@pytest.mark.parametrize(("failure", "code"), [
    (Failure.NONEXISTENT, b"NO (NONEXISTENT)"), (Failure.ACTIVE, b"NO (ACTIVE)"),
    (Failure.ALREADYEXISTS, b"NO (ALREADYEXISTS)"),
    (Failure.MAXSCRIPTS, b"NO (QUOTA/MAXSCRIPTS)"), (Failure.TRYLATER, b"NO (TRYLATER)"),
])
def test_response_codes(failure: Failure, code: bytes) -> None:
    conn = logged_in()
    perform(conn, b'DELETESCRIPT "a"\r\n')
    assert sent(conn.completed(Result(failure, limit=3))).startswith(code + b" ")


def test_a_script_over_the_size_limit_is_read_past_and_refused() -> None:
    conn = logged_in(max_script_size=10)
    conn.receive_data(b'PUTSCRIPT "big" {100+}\r\n' + b"#" * 60)
    assert isinstance(conn.next_event(), protocol.NeedData)
    reply = sent(feed(conn, b"#" * 40 + b"\r\n"))
    assert reply == b'NO (QUOTA/MAXSIZE) "Script is too large (max 10 bytes)."\r\n'
    assert perform(conn, b"LISTSCRIPTS\r\n") == op.ListScripts()


def test_a_literal_too_large_to_read_past_ends_the_session() -> None:
    conn = logged_in(max_script_size=10)
    event = feed(conn, b'PUTSCRIPT "big" {100000000+}\r\n')
    assert isinstance(event, protocol.Send) and event.close
    assert event.data == b'BYE "Literal size too large."\r\n'


def test_havespace() -> None:
    conn = logged_in(max_script_size=100)
    assert perform(conn, b'HAVESPACE "a" 100\r\n') == op.HaveSpace("a", 100)
    conn.completed(Result())
    assert sent(feed(conn, b'HAVESPACE "a" 101\r\n')).startswith(b"NO (QUOTA/MAXSIZE)")
    assert sent(feed(conn, b'HAVESPACE "a" 0\r\n')).startswith(b"NO ")


@pytest.mark.parametrize("name", ["", "a/b", "a\x01b", "x" * 257, "a\u2028b", "\x7f"])
def test_invalid_script_names_are_refused_before_anything_is_done(name: str) -> None:
    conn = logged_in()
    data = name.encode()
    reply = sent(feed(conn, b'PUTSCRIPT {%d+}\r\n%s {5+}\r\nkeep;\r\n' % (len(data), data)))
    assert reply == b'NO "Invalid script name."\r\n'


def test_setactive_empty_deactivates() -> None:
    conn = logged_in()
    assert perform(conn, b'SETACTIVE ""\r\n') == op.SetActive(None)
    assert sent(conn.completed(Result(changed=False))) == b'OK "No scripts currently active."\r\n'


def test_listscripts_and_getscript_responses() -> None:
    conn = logged_in()
    perform(conn, b"LISTSCRIPTS\r\n")
    reply = sent(conn.completed(Result(scripts=(("a", False), ('b"', True)))))
    assert reply == b'"a"\r\n"b\\"" ACTIVE\r\nOK "Listscripts completed."\r\n'
    perform(conn, b'GETSCRIPT "a"\r\n')
    reply = sent(conn.completed(Result(text="keep;\r\n")))
    assert reply == b'{7}\r\nkeep;\r\n\r\nOK "Getscript completed."\r\n'


def test_unauthenticate_returns_to_login() -> None:
    conn = logged_in()
    assert isinstance(feed(conn, b"UNAUTHENTICATE\r\n"), protocol.LoggedOut)
    assert sent(feed(conn, b"LISTSCRIPTS\r\n")).startswith(b"NO ")
    assert isinstance(feed(conn, f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode()),
                      protocol.Authenticate)


def test_noop_echoes_its_tag_and_logout_closes() -> None:
    conn = connection()
    assert sent(feed(conn, b'NOOP "x1"\r\n')) == b'OK (TAG "x1") "Done"\r\n'
    event = feed(conn, b"LOGOUT\r\n")
    assert isinstance(event, protocol.Send) and event.close


def test_a_command_line_over_the_limit_is_refused_and_the_session_goes_on() -> None:
    conn = connection(max_line=100)
    conn.receive_data(b"NOOP " + b"x" * 500)
    assert isinstance(conn.next_event(), protocol.NeedData)
    assert sent(feed(conn, b"\r\n")).startswith(b"NO ")
    assert sent(feed(conn, b"NOOP\r\n")) == b'OK "NOOP Completed"\r\n'


def test_too_many_bad_commands_end_the_session() -> None:
    conn = connection()
    for _ in range(19):
        assert not sent(feed(conn, b"BOGUS\r\n")).startswith(b"BYE")
    event = feed(conn, b"BOGUS\r\n")
    assert isinstance(event, protocol.Send) and event.close and b"BYE" in event.data


def test_wrong_arguments() -> None:
    conn = logged_in()
    for line in (b"PUTSCRIPT a {5+}\r\nkeep;\r\n", b'GETSCRIPT\r\n', b'LISTSCRIPTS "x"\r\n',
                 b'RENAMESCRIPT "a"\r\n', b'HAVESPACE "a" many\r\n'):
        assert sent(feed(conn, line)).startswith(b"NO ")
    # The literal of the refused PUTSCRIPT was read as its argument, not as a command.
    assert perform(conn, b"LISTSCRIPTS\r\n") == op.ListScripts()


def test_commands_read_the_same_however_the_bytes_are_split() -> None:
    """A client's writes reach us cut anywhere: inside a line end, a literal or its size."""
    data = (b'PUTSCRIPT "a b" {12+}\r\nkeep;\r\nstop;\r\nPUTSCRIPT "x" {3}\r\nabc\r\nNOOP\n'
            b'AUTHENTICATE "PLAIN" {4+}\r\nabcd {2+}\r\nxy\r\n'
            + b"NOOP " + b"z" * 9000 + b"\r\nNOOP\r\n")

    def read(chunks: list[bytes]) -> list[wire.Command | wire.SyntaxProblem]:
        reader, commands = wire.CommandReader(), []
        for chunk in chunks:
            reader.feed(chunk)
            while (command := reader.next_command()) is not None:
                commands.append(command)
        return commands

    whole = read([data])
    assert [c.name if isinstance(c, wire.Command) else c.message for c in whole] == [
        "PUTSCRIPT", "PUTSCRIPT", "NOOP", "AUTHENTICATE", "Command line too long.", "NOOP"]
    assert whole[0].args[1] == wire.String("keep;\r\nstop;", literal=True)
    assert read([data[i:i + 1] for i in range(len(data))]) == whole
    assert read([data[i:i + 7] for i in range(0, len(data), 7)]) == whole
