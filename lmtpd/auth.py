"""Password hashing (argon2id) and constant-time checks.

Hashes are stored as argon2 PHC strings (`$argon2id$v=19$...`), which Dovecot also reads as
`{ARGON2ID}`. Verification is CPU- and memory-heavy on purpose: servers call it in a worker
thread, never on the event loop.

Hashes imported from Dovecot keep their `{SCHEME}` prefix (`{SHA512-CRYPT}`, `{BLF-CRYPT}`,
`{SSHA512}`, `{PLAIN}`) until the next successful login, which rehashes them to argon2id
(`needs_rehash` is True for every scheme but argon2id).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import bcrypt
import nacl.exceptions
import nacl.pwhash
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
    # The cheaper legacy schemes also pay for one argon2 check, so a login costs about the
    # same whichever scheme a user's hash still has.
    _verify_argon2(_DUMMY_HASH, password)
    checker = _LEGACY.get(scheme)
    if checker is None:
        return False
    try:
        return checker(body, password.encode("utf-8"))
    except (ValueError, TypeError, binascii.Error):
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
    """`{SHA512-CRYPT}$6$...` -> (`SHA512-CRYPT`, `$6$...`); a bare PHC string -> ("", it).
    Dovecot's encoding suffix is kept (`{SSHA512.HEX}` -> `SSHA512.HEX`)."""
    if stored_hash.startswith("{") and "}" in stored_hash:
        scheme, _, body = stored_hash[1:].partition("}")
        return scheme.upper(), body
    return "", stored_hash


def _check_plain(body: str, password: bytes) -> bool:
    return hmac.compare_digest(body.encode("utf-8"), password)


def _check_sha512_crypt(body: str, password: bytes) -> bool:
    return hmac.compare_digest(sha512_crypt(password, body).encode("ascii"),
                               body.encode("ascii"))


def _check_blf_crypt(body: str, password: bytes) -> bool:
    # crypt_blowfish, which Dovecot uses, reads at most 72 bytes; bcrypt >= 5 refuses longer
    # passwords instead of truncating them, so truncate as Dovecot did when it made the hash.
    return bcrypt.checkpw(password[:72], body.encode("ascii"))


def _check_ssha512(raw: bytes, password: bytes) -> bool:
    digest, salt = raw[:64], raw[64:]
    if len(digest) != 64:
        return False
    return hmac.compare_digest(hashlib.sha512(password + salt).digest(), digest)


def _check_ssha512_b64(body: str, password: bytes) -> bool:
    return _check_ssha512(base64.b64decode(body, validate=True), password)


def _check_ssha512_hex(body: str, password: bytes) -> bool:
    return _check_ssha512(bytes.fromhex(body), password)


_LEGACY = {
    "PLAIN": _check_plain,
    "SHA512-CRYPT": _check_sha512_crypt,
    "BLF-CRYPT": _check_blf_crypt,
    "SSHA512": _check_ssha512_b64,
    "SSHA512.B64": _check_ssha512_b64,
    "SSHA512.BASE64": _check_ssha512_b64,
    "SSHA512.HEX": _check_ssha512_hex,
}
# Schemes `verify_password` accepts besides argon2 (what an importer may store as is).
LEGACY_SCHEMES = frozenset(_LEGACY)

# SHA-512 crypt ("$6$", Ulrich Drepper's published algorithm, as glibc and Dovecot implement
# it), in pure Python: the `crypt` module is deprecated and gone in Python 3.13.
_CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54),
    (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60),
    (40, 61, 19), (62, 20, 41),
)
_ROUNDS_DEFAULT = 5000
# A hash with more rounds would keep a login worker busy for minutes: refuse it.
ROUNDS_MAX = 1_000_000


def sha512_crypt(password: bytes, setting: str) -> str:
    """The `$6$[rounds=N$]salt$hash` string for `password` with the salt (and rounds) of
    `setting`, which may be a whole hash. ValueError for a malformed setting."""
    salt, rounds, explicit = _sha512_setting(setting)
    digest = _sha512_crypt_digest(password, salt.encode("ascii"), rounds)
    prefix = f"$6$rounds={rounds}$" if explicit else "$6$"
    return f"{prefix}{salt}${_crypt_b64(digest)}"


def _sha512_setting(setting: str) -> tuple[str, int, bool]:
    """(salt, rounds, rounds given explicitly) of a `$6$...` string."""
    if not setting.startswith("$6$"):
        raise ValueError("not a SHA512-CRYPT hash")
    parts = setting[3:].split("$")
    rounds, explicit = _ROUNDS_DEFAULT, False
    if parts[0].startswith("rounds="):
        value = parts.pop(0)[7:]
        if not value.isdigit():
            raise ValueError("bad rounds")
        rounds, explicit = max(1000, min(int(value), 999_999_999)), True
        if rounds > ROUNDS_MAX:
            raise ValueError("too many rounds")
    if not parts or not parts[0]:
        raise ValueError("no salt")
    return parts[0][:16], rounds, explicit


def well_formed(scheme: str, body: str) -> bool:
    """A cheap shape check of a legacy hash, so an importer refuses a truncated or mangled
    hash up front instead of locking its user out at the first login."""
    try:
        if scheme == "SHA512-CRYPT":
            _sha512_setting(body)
            tail = body.rsplit("$", 1)[1]
            return len(tail) == 86 and all(c in _CRYPT_ALPHABET for c in tail)
        if scheme == "BLF-CRYPT":
            return len(body) == 60 and body[:4] in ("$2y$", "$2b$", "$2a$")
        if scheme == "SSHA512.HEX":
            return len(bytes.fromhex(body)) > 64
        if scheme.startswith("SSHA512"):
            return len(base64.b64decode(body, validate=True)) > 64
    except (ValueError, binascii.Error):
        return False
    return scheme in _LEGACY


def _sha512_crypt_digest(password: bytes, salt: bytes, rounds: int) -> bytes:
    length = len(password)
    alternate = hashlib.sha512(password + salt + password).digest()
    context = hashlib.sha512(password + salt)
    context.update(_repeat(alternate, length))
    bits = length
    while bits:
        context.update(alternate if bits & 1 else password)
        bits >>= 1
    result = context.digest()
    p_bytes = _repeat(hashlib.sha512(password * length).digest(), length)
    s_bytes = _repeat(hashlib.sha512(salt * (16 + result[0])).digest(), len(salt))
    for i in range(rounds):
        context = hashlib.sha512(p_bytes if i & 1 else result)
        if i % 3:
            context.update(s_bytes)
        if i % 7:
            context.update(p_bytes)
        context.update(result if i & 1 else p_bytes)
        result = context.digest()
    return result


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def _crypt_b64(digest: bytes) -> str:
    out = []
    for a, b, c in _SHA512_ORDER:
        out.append(_b64_from_24bit(digest[a], digest[b], digest[c], 4))
    out.append(_b64_from_24bit(0, 0, digest[63], 2))
    return "".join(out)


def _b64_from_24bit(b2: int, b1: int, b0: int, count: int) -> str:
    word = (b2 << 16) | (b1 << 8) | b0
    chars = []
    for _ in range(count):
        chars.append(_CRYPT_ALPHABET[word & 0x3F])
        word >>= 6
    return "".join(chars)


def _verify_argon2(encoded: str, password: str) -> bool:
    """libsodium (PyNaCl) checks argon2id hashes, argon2-cffi everything else. Same result,
    less CPU: libsodium computes the lanes one after the other in one thread where
    argon2-cffi starts a thread per lane (bench/README.md has the figures); logins are most
    of a POP3 server's CPU."""
    if encoded.startswith("$argon2id$"):
        try:
            return bool(nacl.pwhash.argon2id.verify(encoded.encode("ascii"),
                                                    password.encode("utf-8")))
        except nacl.exceptions.InvalidkeyError:
            return False
        except (nacl.exceptions.CryptoError, ValueError, TypeError, UnicodeError):
            pass  # parameters libsodium does not take: argon2-cffi decides
    try:
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, ValueError):
        return False
