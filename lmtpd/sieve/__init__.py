"""Sieve (RFC 5228) for lmtpd: parse scripts, run them, get actions back."""

from .actions import (
    Action,
    Discard,
    Redirect,
    Reject,
    SieveResult,
    Store,
    Vacation,
    action_to_json,
    actions_to_json,
)
from .interpreter import evaluate, run_scripts
from .limits import SieveLimits
from .message import Envelope, MessageContext
from .parser import Script, SieveSyntaxError, parse
from .submission import (
    REDIRECT_HEADER,
    SubmissionError,
    SubmissionUnavailable,
    prepare_redirect,
    send_message,
)
from .vacation import build_vacation_reply

__all__ = [
    "REDIRECT_HEADER",
    "Action",
    "Discard",
    "Envelope",
    "MessageContext",
    "Redirect",
    "Reject",
    "Script",
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
    "evaluate",
    "parse",
    "prepare_redirect",
    "run_scripts",
    "send_message",
]
