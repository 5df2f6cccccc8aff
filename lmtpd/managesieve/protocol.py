"""The ManageSieve session as a state machine without I/O (RFC 5804).

Bytes go in with `receive_data`; `next_event` hands out what the server must do: send bytes,
check a password, start TLS, or carry out a script operation. Work that needs the outside
world pauses the session until the server reports its outcome (`login_succeeded`,
`login_failed`, `tls_started`, `completed`), so every transition is explicit and testable
without a socket. Response texts and codes follow Pigeonhole's managesieve, which clients
are written against.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass

from lmtpd.managesieve import wire
from lmtpd.managesieve.commands import MAX_ERRORS, parse_operation
from lmtpd.managesieve.operations import Operation
from lmtpd.managesieve.responses import Capabilities, Failure, Result, describe, no, ok
from lmtpd.textproto import NEED_DATA, Authenticate, NeedData, Send, StartTls, UsageError
from lmtpd.textproto import LoginRefusal as LoginFailure

__all__ = ["Capabilities", "Connection", "Failure", "LoginFailure", "Result"]


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


@dataclass(frozen=True)
class LoggedOut:
    """UNAUTHENTICATE: forget the mailbox, then write `reply`."""

    reply: bytes


@dataclass(frozen=True)
class Perform:
    """Carry out `operation` for the logged-in mailbox, then call `completed`."""

    operation: Operation


Event = NeedData | Send | Authenticate | StartTls | LoggedOut | Perform

_ANY_STATE = frozenset({"CAPABILITY", "LOGOUT", "NOOP"})
_BEFORE_LOGIN = frozenset({"AUTHENTICATE", "STARTTLS"})
_AFTER_LOGIN = frozenset({"UNAUTHENTICATE", "HAVESPACE", "PUTSCRIPT", "CHECKSCRIPT",
                          "LISTSCRIPTS", "SETACTIVE", "GETSCRIPT", "DELETESCRIPT",
                          "RENAMESCRIPT"})


class Connection:
    """One ManageSieve session. `plaintext_allowed` says whether AUTHENTICATE PLAIN may be
    used on the connection as it is now (TLS, loopback, or the operator's choice)."""

    def __init__(self, capabilities: Capabilities, *, tls_available: bool = False,
                 tls_active: bool = False, plaintext_allowed: bool = False,
                 max_script_size: int = 1 << 20, max_line: int = 8192) -> None:
        self.capabilities = capabilities
        self.tls_available = tls_available
        self.tls_active = tls_active
        self.plaintext_allowed = plaintext_allowed
        self.max_script_size = max_script_size
        self.state = State.NOT_AUTHENTICATED
        self.username: str | None = None
        self.errors = 0
        self._reader = wire.CommandReader(max_line=max_line, max_literal=max_script_size)
        self._sasl_pending = False
        self._waiting: str | None = None
        self._operation: Operation | None = None

    # -- driving ------------------------------------------------------------------------

    def greeting(self) -> bytes:
        return self._capability_lines() + ok(f"{self.capabilities.implementation} ready.")

    def receive_data(self, data: bytes) -> None:
        self._reader.feed(data)

    def next_event(self) -> Event:
        if self._waiting is not None:
            raise UsageError(f"waiting for the outcome of {self._waiting}")
        if self.state is State.CLOSED:
            raise UsageError("the session is closed")
        command = self._reader.next_command()
        if command is None:
            return NEED_DATA
        if self._sasl_pending:
            self._sasl_pending = False
            return self._sasl_response(command)
        if isinstance(command, wire.SyntaxProblem):
            return self._syntax_problem(command)
        return self._command(command)

    def timed_out(self) -> Send:
        self.state = State.CLOSED
        return Send(b'BYE "Disconnected for inactivity."\r\n', close=True)

    def shutting_down(self) -> Send:
        self.state = State.CLOSED
        return Send(b'BYE "Server shutting down."\r\n', close=True)

    # -- outcomes the server reports ----------------------------------------------------

    def login_succeeded(self, username: str) -> Send:
        self._finish_wait("login")
        self.state = State.AUTHENTICATED
        self.username = username
        return Send(ok("Logged in."))

    def login_failed(self, failure: LoginFailure) -> Send:
        self._finish_wait("login")
        if failure is LoginFailure.TEMPORARY:
            return Send(no("Temporary authentication failure, try again later.",
                           "TRYLATER"))
        return self._error("Authentication failed.", counted=True)

    def tls_started(self, *, plaintext_allowed: bool) -> Send:
        """RFC 5804 §2.2: after the handshake the server sends its capabilities again."""
        self._finish_wait("starttls")
        self.tls_active = True
        self.plaintext_allowed = plaintext_allowed
        return Send(self._capability_lines() + ok("TLS negotiation successful."))

    def completed(self, result: Result) -> Send:
        self._finish_wait("operation")
        operation, self._operation = self._operation, None
        assert operation is not None
        return Send(describe(operation, result))

    # -- commands -----------------------------------------------------------------------

    def _command(self, command: wire.Command) -> Event:
        name = command.name
        if not name:
            return self._error("Error in MANAGESIEVE command: Missing command name.")
        authenticated = self.state is State.AUTHENTICATED
        if name not in _ANY_STATE and name not in (
                _AFTER_LOGIN if authenticated else _BEFORE_LOGIN):
            if name in _AFTER_LOGIN and not authenticated:
                return self._error(f"Error in MANAGESIEVE command {name}: "
                                   f"Authenticate first.")
            return self._error(f"Error in MANAGESIEVE command {name}: Unknown command.")
        handler = getattr(self, f"_cmd_{name.lower()}", None)
        if handler is not None:
            return handler(command.args)  # type: ignore[no-any-return]
        return self._operation_command(name, command.args)

    def _cmd_capability(self, args: tuple[wire.Token, ...]) -> Event:
        if args:
            return self._arguments_error("CAPABILITY")
        return Send(self._capability_lines() + ok("Capability completed."))

    def _cmd_logout(self, args: tuple[wire.Token, ...]) -> Event:
        self.state = State.CLOSED
        return Send(ok("Logout completed."), close=True)

    def _cmd_noop(self, args: tuple[wire.Token, ...]) -> Event:
        if not args:
            return Send(ok("NOOP Completed"))
        if len(args) > 1 or not isinstance(args[0], wire.String):
            return Send(no("Invalid echo tag."))
        # RFC 5804 §2.13: the tag comes back in a TAG response code.
        return Send(b"OK (TAG " + wire.quote(args[0].text) + b') "Done"\r\n')

    def _cmd_starttls(self, args: tuple[wire.Token, ...]) -> Event:
        if args:
            return self._arguments_error("STARTTLS")
        if self.tls_active:
            return self._error("TLS is already active.")
        if not self.tls_available:
            return self._error("TLS support isn't enabled.")
        self._waiting = "starttls"
        self._reader.clear()
        return StartTls(ok("Begin TLS negotiation now."))

    def _cmd_unauthenticate(self, args: tuple[wire.Token, ...]) -> Event:
        if args:
            return self._arguments_error("UNAUTHENTICATE")
        self.state = State.NOT_AUTHENTICATED
        self.username = None
        return LoggedOut(ok("Unauthenticate completed."))

    def _cmd_authenticate(self, args: tuple[wire.Token, ...]) -> Event:
        if not args or len(args) > 2 or not all(isinstance(a, wire.String) for a in args):
            return self._arguments_error("AUTHENTICATE")
        mechanism = args[0].text.upper()
        if mechanism not in self.capabilities.mechanisms:
            return self._error("Unsupported authentication mechanism.")
        if not self.plaintext_allowed:
            return Send(no("Plaintext authentication disallowed on non-secure (SSL/TLS) "
                           "connections.", "ENCRYPT-NEEDED"))
        if len(args) == 2:
            return self._decode_plain(args[1].text)
        self._sasl_pending = True
        return Send(b'""\r\n')  # PLAIN has an empty challenge (RFC 4616)

    def _sasl_response(self, line: wire.Command | wire.SyntaxProblem) -> Event:
        if (isinstance(line, wire.SyntaxProblem) or len(line.tokens) != 1
                or not isinstance(line.tokens[0], wire.String)):
            return self._error("Invalid AUTHENTICATE client response.")
        response = line.tokens[0].text
        if response == "*":
            return Send(no("Authentication aborted by client."))
        return self._decode_plain(response)

    def _decode_plain(self, blob: str) -> Event:
        """RFC 4616: authzid NUL authcid NUL password. An authorization identity other than
        the user's own is refused: nobody may act for another here."""
        try:
            decoded = base64.b64decode(blob.strip(), validate=True).decode("utf-8")
            authzid, username, password = decoded.split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return self._error("Invalid base64 data in AUTHENTICATE response.")
        if authzid and authzid != username:
            return self._error("Authentication failed.", counted=True)
        self._waiting = "login"
        return Authenticate(username, password, "PLAIN")

    def _operation_command(self, name: str, args: tuple[wire.Token, ...]) -> Event:
        parsed = parse_operation(name, args, self.max_script_size)
        if isinstance(parsed, bytes):
            return Send(parsed)
        if isinstance(parsed, str):
            return self._error(parsed)
        self._operation = parsed
        self._waiting = "operation"
        return Perform(parsed)

    def _syntax_problem(self, problem: wire.SyntaxProblem) -> Event:
        if problem.fatal:
            self.state = State.CLOSED
            return Send(b"BYE " + wire.quote(problem.message) + wire.CRLF, close=True)
        if problem.literal_size is not None and problem.name in ("PUTSCRIPT", "CHECKSCRIPT"):
            return Send(no(f"Script is too large (max {self.max_script_size} bytes).",
                           "QUOTA/MAXSIZE"))
        name = f" {problem.name}" if problem.name else ""
        return self._error(f"Error in MANAGESIEVE command{name}: {problem.message}")

    # -- helpers ------------------------------------------------------------------------

    def _capability_lines(self) -> bytes:
        return self.capabilities.lines(
            authenticated=self.state is State.AUTHENTICATED,
            sasl=self.plaintext_allowed, starttls=self.tls_available and not self.tls_active)

    def _arguments_error(self, name: str) -> Send:
        return self._error(f"Error in MANAGESIEVE command {name}: Invalid arguments.")

    def _error(self, text: str, *, counted: bool = True) -> Send:
        """NO for a command the client got wrong; too many of them end the session, as
        Pigeonhole does, so a confused or hostile client cannot go on for ever."""
        if counted:
            self.errors += 1
        if self.errors >= MAX_ERRORS:
            self.state = State.CLOSED
            return Send(no(text) + b'BYE "Too many invalid MANAGESIEVE commands."\r\n',
                        close=True)
        return Send(no(text))

    def _finish_wait(self, what: str) -> None:
        if self._waiting != what:
            raise UsageError(f"not waiting for {what} (waiting for {self._waiting})")
        self._waiting = None

