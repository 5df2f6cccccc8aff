"""Password hashing (argon2id) and constant-time checks.

Hashes are stored as argon2 PHC strings (`$argon2id$v=19$...`), which Dovecot also reads as
`{ARGON2ID}`. Verification is CPU- and memory-heavy on purpose: servers call it in a worker
thread, never on the event loop.
"""

from __future__ import annotations

import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
# A valid hash of a random password: checking unknown users against it costs the same time
# as checking a real one, so response time does not reveal which users exist.
_DUMMY_HASH = _HASHER.hash("lmtpd-no-such-user-\x00")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("the password is empty")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches `stored_hash`. Unknown users (None) and malformed hashes
    take the same time as a real check and return False."""
    if not stored_hash:
        _verify_argon2(_DUMMY_HASH, password)
        return False
    scheme, body = split_scheme(stored_hash)
    if scheme in ("", "ARGON2ID", "ARGON2I"):
        return _verify_argon2(body, password)
    if scheme == "PLAIN":
        _verify_argon2(_DUMMY_HASH, password)
        return hmac.compare_digest(body.encode(), password.encode())
    _verify_argon2(_DUMMY_HASH, password)
    return False


def needs_rehash(stored_hash: str) -> bool:
    scheme, body = split_scheme(stored_hash)
    if scheme not in ("", "ARGON2ID"):
        return True
    try:
        return _HASHER.check_needs_rehash(body)
    except (InvalidHashError, ValueError):
        return True


def split_scheme(stored_hash: str) -> tuple[str, str]:
    """`{SHA512-CRYPT}$6$...` -> (`SHA512-CRYPT`, `$6$...`); a bare PHC string -> ("", it)."""
    if stored_hash.startswith("{") and "}" in stored_hash:
        scheme, _, body = stored_hash[1:].partition("}")
        return scheme.upper(), body
    return "", stored_hash


def _verify_argon2(encoded: str, password: str) -> bool:
    try:
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, ValueError):
        return False
