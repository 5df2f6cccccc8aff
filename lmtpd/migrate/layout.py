"""Where a Dovecot user's Maildir is, from a `mail_location`-like template.

Templates use Dovecot's variables: %u (user), %n (local part), %d (domain), %h (home from the
passwd-file) and `~` for the home, each optionally with `L` for lower case (`%Ld/%Ln`).
A relative result is taken under `--maildir-root`.
"""

from __future__ import annotations

import re
from pathlib import Path

from lmtpd.migrate.passwd import PasswdEntry

# Tried in order when no --layout is given: Dovecot's two common virtual-user layouts.
DEFAULT_LAYOUTS = ("%d/%n/Maildir", "%d/%n")
_VARIABLE = re.compile(r"%(L?)(\{[a-z]+\}|[undh%])")
_LONG = {"{user}": "u", "{username}": "n", "{domain}": "d", "{home}": "h"}


class LayoutError(ValueError):
    pass


def expand(template: str, entry: PasswdEntry, domain: str, lower: bool = False) -> str:
    values = {"u": f"{entry.local}@{domain}" if domain else entry.local, "n": entry.local,
              "d": domain, "h": entry.home, "%": "%"}

    def replace(match: re.Match[str]) -> str:
        modifier, name = match.groups()
        name = _LONG.get(name, name)
        if name not in values:
            raise LayoutError(f"layout variable %{name} is not supported")
        if name == "h" and not entry.home:
            raise LayoutError("the layout uses the home directory, the passwd-file has none")
        value = values[name]
        # %d/%n come from the passwd-file user; a path separator in them would leave the root.
        if name in "und" and ("/" in value or value in (".", "..")):
            raise LayoutError(f"user name {entry.user!r} cannot be part of a path")
        return value.lower() if modifier == "L" or lower else value

    text = _VARIABLE.sub(replace, template)
    if text == "~" or text.startswith("~/"):
        if not entry.home:
            raise LayoutError("the layout uses ~, the passwd-file has no home directory")
        text = entry.home + text[1:]
    return text


def mail_override(entry: PasswdEntry) -> str | None:
    """A per-user `userdb_mail=maildir:PATH[:options]` (or `mail=`) in the extra fields."""
    for item in entry.extra.split():
        key, _, value = item.partition("=")
        if key in ("userdb_mail", "mail") and value.startswith("maildir:"):
            return value[len("maildir:"):].split(":", 1)[0]
    return None


def locate(entry: PasswdEntry, domain: str, root: Path | None,
           layout: str | None) -> tuple[Path | None, list[Path]]:
    """(the Maildir found or None, the paths tried). Dovecot lower-cases user names by default
    (`auth_username_format = %Lu`), so the lower-case spelling is tried too."""
    override = mail_override(entry)
    templates = [override] if override else [layout] if layout else list(DEFAULT_LAYOUTS)
    tried: list[Path] = []
    for template in templates:
        for lower in (False, True):
            text = expand(template, entry, domain, lower)
            path = Path(text)
            if not path.is_absolute():
                if root is None:
                    raise LayoutError(f"layout {template!r} is relative: give --maildir-root")
                path = root / path
            if path in tried:
                continue
            tried.append(path)
            if is_maildir(path):
                return path, tried
    return None, tried


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()
