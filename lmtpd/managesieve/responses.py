"""What the server says: OK/NO lines with response codes, the capability list, and the
response to each script operation's outcome (texts as Pigeonhole words them)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lmtpd.managesieve import operations as op
from lmtpd.managesieve import wire


def ok(text: str, code: str = "") -> bytes:
    return _response(b"OK", text, code)


def no(text: str, code: str = "") -> bytes:
    return _response(b"NO", text, code)


def _response(word: bytes, text: str, code: str) -> bytes:
    line = word
    if code:
        line += b" (" + code.encode() + b")"
    return line + b" " + wire.quote(text) + wire.CRLF


@dataclass(frozen=True)
class Capabilities:
    """What the server offers (RFC 5804 §1.7)."""

    sieve: str  # the SIEVE extensions
    implementation: str = "lmtpd"
    mechanisms: tuple[str, ...] = ("PLAIN",)
    max_redirects: int = 0
    notify: str = ""

    def lines(self, *, authenticated: bool, sasl: bool, starttls: bool) -> bytes:
        """The capability lines: SASL lists PLAIN only where it may be used; STARTTLS only
        before login, when a certificate is configured and TLS is not on yet."""
        items: list[tuple[str, str | None]] = [
            ("IMPLEMENTATION", self.implementation), ("SIEVE", self.sieve)]
        if self.max_redirects:
            items.append(("MAXREDIRECTS", str(self.max_redirects)))
        if self.notify:
            items.append(("NOTIFY", self.notify))
        if not authenticated:
            items.append(("SASL", " ".join(self.mechanisms) if sasl else ""))
            if starttls:
                items.append(("STARTTLS", None))
        items.append(("VERSION", "1.0"))
        items.append(("UNAUTHENTICATE", None))
        return b"".join(wire.quote(key) + (b" " + wire.quote(value) if value is not None
                                           else b"") + wire.CRLF for key, value in items)


class Failure(enum.Enum):
    """Why a script operation was refused, each with its RFC 5804 response code."""

    NONEXISTENT = "NONEXISTENT"
    ACTIVE = "ACTIVE"
    ALREADYEXISTS = "ALREADYEXISTS"
    MAXSCRIPTS = "QUOTA/MAXSCRIPTS"
    MAXSIZE = "QUOTA/MAXSIZE"
    INVALID = ""  # the script does not compile: the errors are the text
    TRYLATER = "TRYLATER"


@dataclass(frozen=True)
class Result:
    """The outcome of an operation, as the server found it."""

    failure: Failure | None = None
    message: str = ""  # compile errors (INVALID), or what went wrong (TRYLATER)
    limit: int = 0  # the quota that was hit
    scripts: tuple[tuple[str, bool], ...] = ()  # LISTSCRIPTS: (name, active)
    text: str = ""  # GETSCRIPT
    changed: bool = True  # SETACTIVE: False when nothing had to change


_FAILURE_TEXT = {
    Failure.NONEXISTENT: "Script does not exist.",
    Failure.ACTIVE: "Cannot delete the active Sieve script.",
    Failure.ALREADYEXISTS: "A sieve script with that name already exists.",
}


def _failure(result: Result) -> bytes:
    failure = result.failure
    assert failure is not None
    if failure is Failure.MAXSCRIPTS:
        return no(f"Script count quota exceeded (max {result.limit} scripts).", failure.value)
    if failure is Failure.MAXSIZE:
        return no(f"Script is too large (max {result.limit} bytes).", failure.value)
    if failure is Failure.INVALID:
        return no(result.message)
    if failure is Failure.TRYLATER:
        return no(result.message or "Temporary server failure, try again later.",
                  failure.value)
    return no(_FAILURE_TEXT[failure], failure.value)


def describe(operation: op.Operation, result: Result) -> bytes:
    """The complete response to `operation`."""
    if result.failure is not None:
        return _failure(result)
    match operation:
        case op.ListScripts():
            listing = b"".join(wire.quote(name) + (b" ACTIVE" if active else b"") + wire.CRLF
                               for name, active in result.scripts)
            return listing + ok("Listscripts completed.")
        case op.GetScript():
            return wire.literal(result.text) + wire.CRLF + ok("Getscript completed.")
        case op.PutScript():
            return ok("PUTSCRIPT completed.")
        case op.CheckScript():
            return ok("Script checked successfully.")
        case op.SetActive(name=None):
            return ok("Active script is now deactivated." if result.changed
                      else "No scripts currently active.")
        case op.SetActive():
            return ok("Setactive completed." if result.changed else "Script is already active.")
        case op.DeleteScript():
            return ok("Deletescript completed.")
        case op.RenameScript():
            return ok("Renamescript completed.")
    return ok("Putscript would succeed.")
