"""Sieve (RFC 5228 and the extensions Pigeonhole runs) for lmtpd: compile, run, get actions.

``compile`` turns a script into a ``Script``; ``run_scripts``/``evaluate`` run it over a
message and return a ``SieveResult`` (actions, errors, duplicate marks, edited message).
Nothing here writes anywhere: delivery carries the result out.
"""

from .actions import (
    Action,
    Discard,
    DuplicateMark,
    FileInto,
    Redirect,
    Reject,
    SieveResult,
    Vacation,
    action_to_json,
    actions_to_json,
)
from .ast import Script, SieveSyntaxError
from .compile import ScriptLoader, compile, up_to_date
from .ext import SUPPORTED_EXTENSIONS
from .ext.include import valid_script_name
from .interpreter import evaluate, run_scripts
from .limits import SieveLimits
from .message import Envelope, MessageContext
from .submission import (
    REDIRECT_HEADER,
    SubmissionError,
    SubmissionUnavailable,
    prepare_redirect,
    send_message,
)
from .vacation import build_vacation_reply

# The name delivery still uses for FileInto; it goes once delivery says FileInto.
Store = FileInto

__all__ = [
    "REDIRECT_HEADER",
    "SUPPORTED_EXTENSIONS",
    "Action",
    "Discard",
    "DuplicateMark",
    "Envelope",
    "FileInto",
    "MessageContext",
    "Redirect",
    "Reject",
    "Script",
    "ScriptLoader",
    "SieveLimits",
    "SieveResult",
    "SieveSyntaxError",
    "Store",
    "SubmissionError",
    "SubmissionUnavailable",
    "Vacation",
    "action_to_json",
    "actions_to_json",
    "build_vacation_reply",
    "compile",
    "evaluate",
    "prepare_redirect",
    "run_scripts",
    "send_message",
    "up_to_date",
    "valid_script_name",
]
