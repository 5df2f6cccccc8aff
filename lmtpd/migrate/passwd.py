"""Dovecot passwd-file entries and the password schemes lmtpd can take over as they are.

Format (one user a line, `#` comments): `user:password:uid:gid:gecos:home:shell:extra_fields`;
only the first two fields are required. The password is `{SCHEME}hash`, or a bare hash in the
passdb's default scheme (CRYPT for passwd-file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lmtpd import auth

# Dovecot's names for plain text passwords.
_PLAIN_ALIASES = {"PLAIN", "CLEAR", "CLEARTEXT"}
# What a `{CRYPT}` hash really is, by its crypt(3) prefix; other CRYPT flavours (DES, MD5,
# SHA-256) are refused.
_CRYPT_PREFIXES = (("$6$", "SHA512-CRYPT"), ("$2y$", "BLF-CRYPT"), ("$2b$", "BLF-CRYPT"),
                   ("$2a$", "BLF-CRYPT"), ("$argon2id$", "ARGON2ID"))


class SchemeError(ValueError):
    """A password lmtpd cannot verify; the message names the scheme, never the hash."""


@dataclass(frozen=True)
class PasswdEntry:
    line: int
    user: str
    password: str = field(repr=False)  # never shown: it is a hash or even a plain password
    uid: str = ""
    gid: str = ""
    home: str = ""
    extra: str = ""

    @property
    def local(self) -> str:
        return self.user.rsplit("@", 1)[0] if "@" in self.user else self.user

    @property
    def domain(self) -> str:
        return self.user.rsplit("@", 1)[1] if "@" in self.user else ""


def read_passwd_file(path: Path) -> Iterator[PasswdEntry]:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split(":", 7)
            fields += [""] * (8 - len(fields))
            yield PasswdEntry(line=number, user=fields[0].strip(), password=fields[1],
                              uid=fields[2], gid=fields[3], home=fields[5], extra=fields[7])


def stored_hash(password: str, default_scheme: str = "CRYPT") -> tuple[str, str]:
    """(scheme, hash to store) for a passwd-file password field; SchemeError when lmtpd could
    not verify it. The hash keeps Dovecot's `{SCHEME}` prefix, which `lmtpd.auth` reads."""
    if not password:
        raise SchemeError("no password (Dovecot would need `nopassword`)")
    scheme, body = auth.split_scheme(password)
    if not scheme:
        scheme = default_scheme.upper()
    if scheme in _PLAIN_ALIASES:
        return "PLAIN", "{PLAIN}" + body
    if scheme == "CRYPT":
        scheme = next((name for prefix, name in _CRYPT_PREFIXES if body.startswith(prefix)), "")
        if not scheme:
            raise SchemeError("CRYPT hash of a kind lmtpd cannot verify (DES, MD5 or SHA-256 "
                              "crypt); reset the password with `lmtpd mailbox passwd`")
    if scheme == "ARGON2ID":
        if not body.startswith("$argon2id$"):
            raise SchemeError("{ARGON2ID} value is not an argon2id PHC string")
        return scheme, "{ARGON2ID}" + body
    if scheme not in auth.LEGACY_SCHEMES:
        raise SchemeError(f"password scheme {scheme} is not supported (accepted: ARGON2ID, "
                          "SHA512-CRYPT, BLF-CRYPT, SSHA512, PLAIN); reset the password with "
                          "`lmtpd mailbox passwd`")
    if not auth.well_formed(scheme, body):
        raise SchemeError(f"malformed {scheme} hash")
    return scheme, "{" + scheme + "}" + body
