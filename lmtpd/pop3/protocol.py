"""The POP3 session as a state machine without I/O (RFC 1939, 2449, 2595, 5034).

Bytes go in with `receive_data`; `next_event` hands out what the server must do: send bytes,
check a password, start TLS, stream a message, or delete the marked messages. Work that needs
the outside world (the password check, the TLS handshake, the deletes) pauses the session until
the server reports the outcome (`login_succeeded`, `login_failed`, `tls_started`,
`update_finished`), so every transition is explicit and testable without a socket.

`MessageEncoder` turns stored message bytes (LF or CRLF line ends) into the RETR/TOP wire form:
CRLF line ends and dot-stuffing, chunk by chunk, so a large message never sits in memory.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from lmtpd.pop3.maildrop import Maildrop
from lmtpd.pop3.wire import (
    CRLF,
    NEED_DATA,
    TOO_LONG,
    Authenticate,
    Event,
    LineBuffer,
    LoginFailure,
    MessageInfo,
    NeedData,
    Retrieve,
    Send,
    StartTls,
    State,
    Update,
    UsageError,
    err,
    multiline,
    ok,
)

__all__ = ["NEED_DATA", "TOO_LONG", "Authenticate", "Connection", "Event", "LineBuffer",
           "LoginFailure", "MessageEncoder", "MessageInfo", "NeedData", "Retrieve", "Send",
           "StartTls", "State", "Update", "UsageError", "err", "multiline", "ok"]

# RFC 2449 §4: a command line is at most 255 octets, CRLF included.
MAX_COMMAND_LINE = 255
# RFC 5034 §4: a SASL response sent after "+ " is not bound by the 255-octet limit; this is
# room for a 255-octet user name and a password of about 2.5 KB once base64-encoded.
MAX_SASL_LINE = 4096
IMPLEMENTATION = "lmtpd"
MECHANISMS = ("PLAIN",)

# -- the session ----------------------------------------------------------------------------

_TRANSACTION_COMMANDS = frozenset({"STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"})
_AUTHORIZATION_COMMANDS = frozenset({"USER", "PASS", "AUTH", "STLS", "APOP"})


class Connection:
    """One POP3 session. `plaintext_allowed` says whether USER/PASS and AUTH PLAIN may be used
    on the connection as it is now (the server's policy: TLS, loopback, trusted networks or
    `allow_plaintext_auth`)."""

    def __init__(
        self,
        *,
        hostname: str = "localhost",
        tls_available: bool = False,
        tls_active: bool = False,
        plaintext_allowed: bool = False,
        max_errors: int = 10,
    ) -> None:
        self.hostname = hostname
        self.tls_available = tls_available
        self.tls_active = tls_active
        self.plaintext_allowed = plaintext_allowed
        self.max_errors = max_errors
        self.state = State.AUTHORIZATION
        self.errors = 0
        self.username: str | None = None  # who logged in (after login_succeeded)
        self._lines = LineBuffer()
        self._pending_user: str | None = None  # USER given, waiting for PASS
        self._sasl_pending = False  # "+ " sent, waiting for the PLAIN response
        self._waiting: str | None = None  # an event the server has not answered yet
        self._attempt_user: str | None = None
        self.maildrop = Maildrop((), self._error)

    # -- driving ------------------------------------------------------------------------

    def greeting(self) -> bytes:
        return ok(f"{self.hostname} POP3 ready.")

    def receive_data(self, data: bytes) -> None:
        self._lines.feed(data)

    def next_event(self) -> Event:
        if self._waiting is not None:
            raise UsageError(f"waiting for the outcome of {self._waiting}")
        if self.state in (State.CLOSED, State.UPDATE):
            raise UsageError(f"the session is in state {self.state.value}")
        limit = MAX_SASL_LINE if self._sasl_pending else MAX_COMMAND_LINE
        line = self._lines.next_line(limit)
        if line is None:
            return NEED_DATA
        if line is TOO_LONG:
            self._sasl_pending = False
            self._pending_user = None
            return self._error("Line too long.")
        if self._sasl_pending:
            self._sasl_pending = False
            return self._sasl_response(line)
        return self._command(line)

    def timed_out(self) -> Send:
        self.state = State.CLOSED
        return Send(err("Disconnected for inactivity."), close=True)

    def shutting_down(self) -> Send:
        self.state = State.CLOSED
        return Send(err("[SYS/TEMP] Server shutting down."), close=True)

    # -- outcomes reported by the server ----------------------------------------------------

    def login_succeeded(self, maildrop: Sequence[MessageInfo]) -> Send:
        self._expect("login")
        self.state = State.TRANSACTION
        self.username = self._attempt_user
        self.maildrop = Maildrop(maildrop, self._error)
        count, size = self.maildrop.totals()
        return Send(ok(f"Logged in, {count} messages ({size} octets)."))

    def login_failed(self, reason: LoginFailure) -> Send:
        self._expect("login")
        self._attempt_user = None
        if reason is LoginFailure.IN_USE:
            return Send(err("[IN-USE] Mailbox is locked by another POP3 session."))
        if reason is LoginFailure.TEMPORARY:
            return Send(err("[SYS/TEMP] Temporary failure, try again later."))
        if reason is LoginFailure.LOCKED:
            return self._error("[AUTH] Too many failed logins, try again later.")
        return self._error("[AUTH] Authentication failed.")

    def tls_started(self, *, plaintext_allowed: bool = True) -> None:
        self._expect("tls")
        self.tls_active = True
        self.plaintext_allowed = plaintext_allowed
        # RFC 2595 §4: everything learnt before the handshake is forgotten.
        self._pending_user = None
        self._lines.clear()

    def tls_failed(self) -> None:
        self._expect("tls")
        self.state = State.CLOSED

    def message_unavailable(self) -> Send:
        return Send(err("[SYS/TEMP] The message cannot be read now."))

    def update_finished(self, *, deleted: int, failed: int) -> Send:
        self._expect("update")
        self.state = State.CLOSED
        if failed:
            return Send(err(f"[SYS/TEMP] {failed} deleted messages could not be removed."),
                        close=True)
        return Send(ok(f"Logging out, {deleted} messages deleted."), close=True)

    def _expect(self, what: str) -> None:
        if self._waiting != what:
            raise UsageError(f"no {what} outcome expected (waiting for {self._waiting})")
        self._waiting = None

    # -- dispatch -------------------------------------------------------------------------

    def _error(self, text: str) -> Send:
        """A -ERR that counts towards `max_errors`; the last one closes the session."""
        self.errors += 1
        if self.errors >= self.max_errors:
            self.state = State.CLOSED
            return Send(err("Too many bad commands, closing connection."), close=True)
        return Send(err(text))

    def _command(self, line: bytes) -> Event:
        keyword, _, rest = line.partition(b" ")
        try:
            name = keyword.decode("ascii").upper()
        except UnicodeDecodeError:
            name = ""
        if name != "PASS":
            self._pending_user = None
        if name == "CAPA":
            return self._capa(rest)
        if name == "QUIT":
            return self._quit(rest)
        if self.state is State.AUTHORIZATION:
            handler = {"USER": self._user, "PASS": self._pass, "AUTH": self._auth,
                       "STLS": self._stls}.get(name)
            if handler is not None:
                return handler(rest)
            if name in _TRANSACTION_COMMANDS:
                return self._error("Not logged in.")
        else:
            handler = self.maildrop.commands.get(name)
            if handler is not None:
                return handler(rest)
            if name in _AUTHORIZATION_COMMANDS:
                return self._error("Already logged in.")
        return self._error("Unknown command.")

    # -- AUTHORIZATION --------------------------------------------------------------------

    def _capa(self, rest: bytes) -> Send:
        if rest.strip():
            return self._error("CAPA takes no argument.")
        lines = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state is State.AUTHORIZATION:
            if self.plaintext_allowed:
                lines += ["USER", "SASL " + " ".join(MECHANISMS)]
            if self.tls_available and not self.tls_active:
                lines.append("STLS")
        lines.append(f"IMPLEMENTATION {IMPLEMENTATION}")
        return Send(multiline(ok("Capability list follows."), lines))

    def _plaintext_refused(self) -> Send | None:
        if self.plaintext_allowed:
            return None
        return self._error("[AUTH] Plaintext authentication disallowed on non-secure "
                           "connections; use STLS first.")

    def _user(self, rest: bytes) -> Event:
        refused = self._plaintext_refused()
        if refused:
            return refused
        if not rest.strip():
            return self._error("USER needs a user name.")
        # Always +OK: whether the user exists is only told after PASS, in constant time.
        self._pending_user = _text(rest.strip())
        return Send(ok("Send the password."))

    def _pass(self, rest: bytes) -> Event:
        user, self._pending_user = self._pending_user, None
        if user is None:
            return self._error("Give USER first.")
        # RFC 1939 §7: the whole rest of the line is the password, spaces included.
        return self._authenticate(user, _password(rest), "USER")

    def _auth(self, rest: bytes) -> Event:
        args = rest.split()
        if not args:
            # Older clients send a bare AUTH to learn the mechanisms (RFC 1734 style).
            usable = MECHANISMS if self.plaintext_allowed else ()
            return Send(multiline(ok("Supported mechanisms follow."), list(usable)))
        if len(args) > 2:
            return self._error("Syntax: AUTH mechanism [initial-response]")
        mechanism = args[0].decode("ascii", "replace").upper()
        if mechanism not in MECHANISMS:
            return self._error("Unsupported authentication mechanism.")
        refused = self._plaintext_refused()
        if refused:
            return refused
        if len(args) == 1:
            self._sasl_pending = True
            return Send(b"+ " + CRLF)
        # RFC 5034 §4: "=" stands for an empty initial response.
        return self._sasl_response(b"" if args[1] == b"=" else args[1], initial=True)

    def _sasl_response(self, line: bytes, *, initial: bool = False) -> Event:
        if not initial and line.strip() == b"*":
            return self._error("Authentication cancelled.")
        try:
            decoded = base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            return self._error("Invalid base64 data.")
        parts = decoded.split(b"\x00")
        if len(parts) != 3 or not parts[1]:
            return self._error("Invalid SASL PLAIN response.")
        authzid, authcid, password = parts
        if authzid and authzid != authcid:
            return self._error("[AUTH] Logging in as another user is not supported.")
        return self._authenticate(_text(authcid), _password(password), "PLAIN")

    def _authenticate(self, username: str, password: str, mechanism: str) -> Authenticate:
        self._waiting = "login"
        self._attempt_user = username
        return Authenticate(username, password, mechanism)

    def _stls(self, rest: bytes) -> Event:
        if rest.strip():
            return self._error("STLS takes no argument.")
        if self.tls_active:
            return self._error("TLS is already active.")
        if not self.tls_available:
            return self._error("STLS is not available.")
        self._waiting = "tls"
        # Lines pipelined after STLS arrived in plaintext: never act on them (RFC 2595 §4).
        self._lines.clear()
        return StartTls(ok("Begin TLS negotiation now."))

    def _quit(self, rest: bytes) -> Event:
        if rest.strip():
            return self._error("QUIT takes no argument.")
        if self.state is State.TRANSACTION:
            self.state = State.UPDATE
            self._waiting = "update"
            return Update(tuple(sorted(self.maildrop.deleted)))
        self.state = State.CLOSED
        return Send(ok("Logging out."), close=True)

def _text(raw: bytes) -> str:
    """A user name as text; bytes that are not UTF-8 cannot name a mailbox anyway."""
    return raw.decode("utf-8", "replace")


def _password(raw: bytes) -> str:
    """A password as text; undecodable bytes give "" which never matches."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return ""


# -- message transfer -----------------------------------------------------------------------

_BARE_LF = re.compile(rb"(?<!\r)\n")


class MessageEncoder:
    """Stored message bytes -> RETR/TOP wire bytes, one chunk at a time.

    Every LF not preceded by CR becomes CRLF (state carries across chunks, so a CR at the end
    of one chunk and the LF at the start of the next stay one CRLF), and a line starting with
    "." gets another "." (RFC 1939 §3). With `body_lines` set (TOP), output stops after the
    header section, the empty line and that many body lines; `done` then turns true.
    """

    def __init__(self, body_lines: int | None = None) -> None:
        self._limit = body_lines
        self._at_line_start = True
        self._after_cr = False
        self._in_header = True
        self._line_head = b""  # first two bytes of the current line, to spot the empty line
        self._body_seen = 0
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if self.done or not data:
            return b""
        if self._limit is not None:
            cut = self._cut(data)
            if cut is not None:
                data = data[:cut]
                self.done = True
        return self._encode(data)

    def finish(self) -> bytes:
        """The end of the transfer: a line end if the message lacked a final one, then the
        terminating dot."""
        if self._at_line_start:
            return b".\r\n"
        return (b"\n" if self._after_cr else b"\r\n") + b".\r\n"

    def _encode(self, data: bytes) -> bytes:
        head = b""
        if self._after_cr and data.startswith(b"\n"):
            # The CR ended the previous chunk: this LF completes a CRLF, not a bare LF.
            head, data = b"\n", data[1:]
        if b"\r" in data:
            out = head + _BARE_LF.sub(b"\r\n", data)
        else:
            # The usual case (Maildir stores LF): a plain replace, several times faster.
            out = head + data.replace(b"\n", b"\r\n")
        if self._at_line_start and out.startswith(b"."):
            out = b"." + out
        out = out.replace(b"\n.", b"\n..")
        tail = head + data
        self._after_cr = tail.endswith(b"\r")
        self._at_line_start = tail.endswith(b"\n")
        return out

    def _cut(self, data: bytes) -> int | None:
        """Where to stop in `data` for TOP, or None to take it all."""
        assert self._limit is not None
        pos = 0
        while True:
            end = data.find(b"\n", pos)
            if end < 0:
                self._line_head = (self._line_head + data[pos:pos + 2])[:2]
                return None
            head = (self._line_head + data[pos:min(end, pos + 2)])[:2]
            self._line_head = b""
            pos = end + 1
            if self._in_header:
                if head in (b"", b"\r"):
                    self._in_header = False
                    if self._limit == 0:
                        return pos
            else:
                self._body_seen += 1
                if self._body_seen >= self._limit:
                    return pos
