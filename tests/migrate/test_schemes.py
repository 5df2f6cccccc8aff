"""Password schemes taken over from Dovecot: hashes made by `doveadm pw` (the oracle) verify
with the right password only, are refused with a clear message when lmtpd cannot check them,
and are replaced by argon2id at the next successful login."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import warnings
from typing import Any

import pytest

from lmtpd import auth
from lmtpd.migrate.passwd import SchemeError, stored_hash
from tests.migrate.conftest import dovecot_hash

SCHEMES = ["SHA512-CRYPT", "BLF-CRYPT", "SSHA512", "SSHA512.HEX", "PLAIN", "CLEARTEXT",
           "ARGON2ID"]
PASSWORDS = ["s3cret", "pässwörd ünïcode", "with:colon and spaces", "x" * 100]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_doveadm_hashes_verify(scheme: str) -> None:
    for password in PASSWORDS:
        if scheme == "ARGON2ID" and password != PASSWORDS[0]:
            continue  # slow by design; one password shows the PHC string is read
        made = dovecot_hash(scheme, password)
        _, kept = stored_hash(made)
        assert auth.verify_password(kept, password), (scheme, password)
        if scheme == "BLF-CRYPT" and len(password.encode()) > 72:
            continue  # only the first 72 bytes count (see the truncation test)
        assert not auth.verify_password(kept, password + "x")
        assert not auth.verify_password(kept, password[:-1])
        assert auth.needs_rehash(kept) or scheme == "ARGON2ID"


def test_bcrypt_long_passwords_truncate_as_dovecot() -> None:
    # crypt_blowfish reads 72 bytes; bcrypt >= 5 would refuse a longer password outright.
    made = dovecot_hash("BLF-CRYPT", "y" * 80)
    assert auth.verify_password(made, "y" * 80)
    assert auth.verify_password(made, "y" * 72 + "z" * 8)


def test_sha512_crypt_matches_libc() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the reference on Python 3.11; our implementation needs no libc
    for password in ["", "a", "pässword", "x" * 64, "y" * 200]:
        for setting in ["$6$saltsalt", "$6$rounds=10000$saltstring", "$6$abcdefghijklmnopqr"]:
            assert auth.sha512_crypt(password.encode(), setting) == crypt.crypt(password,
                                                                                 setting)


def test_ssha512_by_hand() -> None:
    salt = b"\x00\x01salty"
    body = base64.b64encode(hashlib.sha512(b"pw" + salt).digest() + salt).decode()
    assert auth.verify_password("{SSHA512}" + body, "pw")
    assert not auth.verify_password("{SSHA512}" + body, "pW")
    assert not auth.verify_password("{SSHA512}" + body[:20], "pw")


@pytest.mark.parametrize("value,scheme", [
    ("{CRYPT}$6$abc$" + "a" * 86, "SHA512-CRYPT"),
    ("$2y$05$" + "a" * 53, "BLF-CRYPT"),  # bare: the passdb default scheme (CRYPT)
    ("{CLEAR}pw", "PLAIN"),
])
def test_scheme_normalised(value: str, scheme: str) -> None:
    assert stored_hash(value)[0] == scheme


@pytest.mark.parametrize("scheme", ["MD5-CRYPT", "SHA256-CRYPT", "DES-CRYPT", "CRAM-MD5",
                                    "SHA1", "PLAIN-MD5"])
def test_unsupported_schemes_refused_without_showing_the_hash(scheme: str) -> None:
    made = dovecot_hash(scheme, "pw")
    with pytest.raises(SchemeError) as error:
        stored_hash(made)
    body = made.split("}", 1)[1]
    assert body not in str(error.value)
    assert "lmtpd mailbox passwd" in str(error.value)


@pytest.mark.parametrize("value", ["", "{SHA512-CRYPT}$6$trunc", "{BLF-CRYPT}$2y$05$short",
                                   "{SSHA512}!!notbase64", "{ARGON2ID}nonsense"])
def test_malformed_hashes_refused(value: str) -> None:
    with pytest.raises(SchemeError):
        stored_hash(value)


def test_unknown_and_broken_hashes_are_false() -> None:
    assert not auth.verify_password(None, "pw")
    assert not auth.verify_password("{MD5-CRYPT}$1$abc$def", "pw")
    assert not auth.verify_password("{SHA512-CRYPT}$6$rounds=99999999$s$x", "pw")
    assert not auth.verify_password("{BLF-CRYPT}garbage", "pw")


def test_login_rehashes_to_argon2id(tmp_path: Any) -> None:
    """The login path of POP3 and ManageSieve takes an imported hash and replaces it with an
    argon2id one at the first right password."""
    from lmtpd import config as config_module
    from lmtpd.login_cache import LoginCache
    from lmtpd.logins import Attempt, Authenticator, Refusal
    from lmtpd.store.mailboxes import Store
    from lmtpd.store.worker import Workers

    conf = tmp_path / "lmtpd.toml"
    conf.write_text(f'[store]\nroot = "{tmp_path}"\nfsync = false\n'
                    '[domains]\nlocal = ["example.org"]\n'
                    '[pop3]\nlogin_failure_delay = 0\n')
    workers = Workers(Store(config_module.load(conf)))
    store = workers.store
    legacy = dovecot_hash("SHA512-CRYPT", "pw")

    async def login(password: str) -> object:
        auth = Authenticator(workers, LoginCache())
        return await auth.login(Attempt("pop3", "a@example.org", password, "PLAIN", None, "-"))

    def stored_hash() -> str:
        return store.index.require_mailbox("a@example.org").password_hash

    try:
        store.index.add_mailbox("a@example.org", "example.org", legacy, 0)
        assert asyncio.run(login("wrong")) is Refusal.INVALID
        assert stored_hash() == legacy
        assert not isinstance(asyncio.run(login("pw")), Refusal)
        assert stored_hash().startswith("$argon2id$")
        assert not isinstance(asyncio.run(login("pw")), Refusal)
    finally:
        workers.close()
