"""The arguments of the ManageSieve commands that work on a mailbox's scripts, checked and
turned into operations for the server to carry out (RFC 5804 §2.5-2.12)."""

from __future__ import annotations

from lmtpd.managesieve import wire
from lmtpd.managesieve.operations import (
    CheckScript,
    DeleteScript,
    GetScript,
    HaveSpace,
    ListScripts,
    Operation,
    PutScript,
    RenameScript,
    SetActive,
)
from lmtpd.managesieve.responses import no
from lmtpd.scripts import script_name_problem

# Commands a client may get wrong before the session is ended (Pigeonhole: 20).
MAX_ERRORS = 20


# How many string arguments each command takes (HAVESPACE: a string and a number).
_STRINGS = {"LISTSCRIPTS": 0, "GETSCRIPT": 1, "PUTSCRIPT": 2, "CHECKSCRIPT": 1,
            "SETACTIVE": 1, "DELETESCRIPT": 1, "RENAMESCRIPT": 2}

# How many of them are script names ("" is no name for SETACTIVE: no script active).
_NAMES = {"LISTSCRIPTS": 0, "GETSCRIPT": 1, "PUTSCRIPT": 1, "CHECKSCRIPT": 0,
          "SETACTIVE": 1, "DELETESCRIPT": 1, "RENAMESCRIPT": 2}


def _too_large(size: int) -> bytes:
    return no(f"Script is too large (max {size} bytes).", "QUOTA/MAXSIZE")


def parse_operation(name: str, args: tuple[wire.Token, ...], max_script_size: int
                    ) -> Operation | bytes | str:
    """The operation a command asks for; or a complete response (bytes) when it can be
    refused without the mailbox; or the text of a syntax error (a client mistake)."""
    if name == "HAVESPACE":
        return _havespace(args, max_script_size)
    if len(args) != _STRINGS[name] or not all(isinstance(a, wire.String) for a in args):
        return f"Error in MANAGESIEVE command {name}: Invalid arguments."
    texts = [a.text for a in args]
    if name in ("PUTSCRIPT", "CHECKSCRIPT") and len(texts[-1].encode()) > max_script_size:
        return _too_large(max_script_size)
    names = texts[:_NAMES[name]]
    if any(script_name_problem(text) for text in names if text or name != "SETACTIVE"):
        return no("Invalid script name.")
    match name:
        case "LISTSCRIPTS":
            return ListScripts()
        case "GETSCRIPT":
            return GetScript(texts[0])
        case "PUTSCRIPT":
            return PutScript(texts[0], texts[1])
        case "CHECKSCRIPT":
            return CheckScript(texts[0])
        case "SETACTIVE":
            return SetActive(texts[0] or None)
        case "DELETESCRIPT":
            return DeleteScript(texts[0])
    return RenameScript(texts[0], texts[1])


def _havespace(args: tuple[wire.Token, ...], max_script_size: int) -> HaveSpace | bytes | str:
    if len(args) != 2:
        return "Error in MANAGESIEVE command HAVESPACE: Invalid arguments."
    scriptname, size = args
    if not isinstance(scriptname, wire.String):
        return no("Invalid string for scriptname.")
    if not isinstance(size, wire.Atom) or not size.text.isdigit() or len(size.text) > 19:
        return no("Invalid scriptsize argument.")
    if script_name_problem(scriptname.text):
        return no("Invalid script name.")
    octets = int(size.text)
    if octets == 0:
        return no("Cannot upload empty script.")
    if octets > max_script_size:
        return _too_large(max_script_size)
    return HaveSpace(scriptname.text, octets)
