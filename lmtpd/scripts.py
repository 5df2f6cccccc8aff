"""Named Sieve scripts: the rules for a script's name, the compile check every stored script
passes, and the extensions lmtpd offers. Shared by `lmtpd sieve` and ManageSieve, so both
accept and refuse the same scripts."""

from __future__ import annotations

from collections.abc import Mapping

from lmtpd.config import Config
from lmtpd.filtering import ScriptSource, limits_from
from lmtpd.sieve import SUPPORTED_EXTENSIONS, SieveSyntaxError, compile

__all__ = ["DEFAULT_NAME", "SieveSyntaxError", "check_script", "script_name_problem",
           "sieve_capability"]

DEFAULT_NAME = "main"
# Pigeonhole's limit on a script's name, in characters.
MAX_NAME_LENGTH = 256
# Comparators every Sieve implementation has (RFC 5228 §2.7.3); like Pigeonhole we do not
# list them among the extensions.
_ALWAYS_THERE = frozenset({"comparator-i;octet", "comparator-i;ascii-casemap"})


def script_name_problem(name: str) -> str | None:
    """Why `name` cannot name a script, or None. The rules are Pigeonhole's (and so a
    Dovecot user's names keep working): 1 to 256 characters, no control characters (RFC 5804
    §1.6), no "/", DEL, U+00FF, LINE or PARAGRAPH SEPARATOR."""
    if not name:
        return "a script name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a script name is at most {MAX_NAME_LENGTH} characters"
    for char in name:
        code = ord(char)
        if code <= 0x1F or code == 0x7F or 0x80 <= code <= 0x9F:
            return "a script name cannot hold control characters"
        if char == "/":
            return 'a script name cannot hold "/"'
        if code in (0xFF, 0x2028, 0x2029) or 0xD800 <= code <= 0xDFFF:
            return f"a script name cannot hold U+{code:04X}"
    return None


def check_script(config: Config, text: str,
                 personal: Mapping[str, str] | None = None) -> list[str]:
    """Compile `text` as delivery would, as a script being stored: raises SieveSyntaxError
    (line, column), and returns the warnings (an included script that does not exist yet,
    which Pigeonhole's ManageSieve also allows). `personal` holds the mailbox's other scripts
    by name. Blocking (CPU): the servers run it in the disk pool. The one place scripts are
    compiled for storing."""
    source = ScriptSource(config.sieve.global_dir, (personal or {}).get)
    return list(compile(text, limits_from(config), loader=source, uploading=True).warnings)


def sieve_capability() -> str:
    """The Sieve extensions a script may `require`, as ManageSieve's SIEVE capability."""
    return " ".join(sorted(SUPPORTED_EXTENSIONS - _ALWAYS_THERE))


def notify_capability() -> str:
    """The notification methods of `enotify`, when it is supported ("" otherwise)."""
    return "mailto" if "enotify" in SUPPORTED_EXTENSIONS else ""
