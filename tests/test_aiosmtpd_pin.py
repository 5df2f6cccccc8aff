"""lmtpd.lmtp overrides and calls private parts of aiosmtpd. pyproject.toml caps aiosmtpd
below the next minor release; this test fails loudly, naming the method, when the installed
aiosmtpd differs in any method we override, call or rely on, so that an upgrade within the
cap is checked by a person before it ships.

When it fails: read the new source of the method it names, re-check what its note says, fix
lmtpd.lmtp if needed, then record the new fingerprint below (and raise the cap in
pyproject.toml once a new minor release passes)."""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

import pytest
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

# Method -> (sha256 of its source, first 16 hex digits; what lmtpd relies on). Recorded
# against aiosmtpd 1.4.6.
RECORDED = {
    "SMTP.__init__": ("8a9ca80f23ad9bf2",
                      "the StreamReader gets line_length_limit; loop, _timeout_duration and "
                      "command_size_limits exist when our __init__ runs after it"),
    "SMTP._handle_client": ("0e4d096403af6c74",
                            "command lines are checked against command_size_limits (extended) "
                            "or command_size_limit with '500 Command line too long' and the "
                            "session goes on; a line past line_length_limit is read in pieces; "
                            "the timer is reset per command"),
    "SMTP._reset_timeout": ("fef19b94d28dff31",
                            "takes a duration in seconds; our _timeout_cb re-arms with it"),
    "SMTP._timeout_cb": ("10a7351f9bec2818",
                         "closes the transport: our override calls it only after "
                         "lmtp.timeout seconds of silence"),
    "SMTP.connection_lost": ("d3bf6349bc3c25c1",
                             "cancels the handler coroutine; our override calls it after "
                             "on_close"),
    "SMTP._create_envelope": ("54afceea638744d4",
                              "called for every new transaction; ours returns LmtpEnvelope"),
    "SMTP._set_post_data_state": ("1dc8a8abca2a8164",
                                  "our smtp_DATA calls it after the replies to reset the "
                                  "envelope"),
    "SMTP._getaddr": ("0aeb21c56ac1260e",
                      "ours replaces it: same (address, rest) contract, plus taking the DSN "
                      "parameters off `rest`"),
    "SMTP._getparams": ("ca3dd15943d34dcc",
                        "parameters it does not know make smtp_MAIL/RCPT answer 555; DSN ones "
                        "must be gone before it runs"),
    "SMTP.push": ("15f4f1de5e30c337",
                  "ours adds enhanced status codes and calls it with one string per reply "
                  "(several lines joined by CRLF after DATA)"),
    "SMTP.check_helo_needed": ("9829bb73251c983e", "our smtp_DATA calls it first"),
    "SMTP.smtp_EHLO": ("1d91592dd954c4cd",
                       "LHLO goes through it: handle_EHLO gets and returns the response "
                       "lines; it grows command_size_limits['MAIL'], which our smtp_LHLO "
                       "clears"),
    "SMTP.smtp_MAIL": ("80dd938e7791acfb",
                       "calls _getaddr, then SIZE/BODY/SMTPUTF8 checks, sets "
                       "envelope.smtp_utf8, then handle_MAIL; our override runs before it"),
    "SMTP.smtp_RCPT": ("a0d6605883c0e608",
                       "calls _getaddr, answers 555 to parameters left over, then "
                       "handle_RCPT; our override runs before it"),
    "SMTP.smtp_DATA": ("3a33f30d3fd6d02f",
                       "ours replaces it entirely (one reply per recipient on every path): "
                       "see what a fix there should also change in ours"),
    "SMTP._cb_client_connected": ("a73e95bb7f362ab9",
                                  "sets self._reader, which our smtp_DATA reads DATA from"),
    "LMTP.smtp_LHLO": ("3eccab8208388048",
                       "calls smtp_EHLO; ours wraps it (capability lines go out without "
                       "enhanced codes)"),
}
CLASSES = {"SMTP": SMTP, "LMTP": LMTP}


def fingerprint(name: str) -> str:
    cls, method = name.split(".")
    source = inspect.getsource(getattr(CLASSES[cls], method))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_aiosmtpd_method_we_depend_on_is_unchanged(name: str) -> None:
    recorded, relies_on = RECORDED[name]
    found = fingerprint(name)
    if found != recorded:
        pytest.fail(
            f"aiosmtpd {version('aiosmtpd')} changed {name} (fingerprint {found}, recorded "
            f"{recorded} for 1.4.6). lmtpd.lmtp relies on it: {relies_on}. Re-check that, "
            f"then record the new fingerprint in {__name__}.RECORDED.", pytrace=False)


def test_every_private_method_lmtpd_overrides_is_recorded() -> None:
    """A new override of a private aiosmtpd method must be added to RECORDED."""
    from lmtpd.lmtp import LmtpSession

    overridden = {
        f"{base.__name__}.{name}"
        for name, value in vars(LmtpSession).items()
        if callable(value) and name.startswith("_") and not name.startswith("__")
        for base in (LMTP, SMTP) if name in vars(base)
    }
    assert overridden <= set(RECORDED), overridden - set(RECORDED)
