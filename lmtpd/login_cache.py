"""Remembers recent successful logins, so a client that polls every few minutes does not
cost a full argon2 check (about 0.1 s of CPU and 64 MiB) each time.

What is kept per mailbox is an HMAC of the stored password hash and the password that matched
it, under a random key made when the server starts, and when it expires (`pop3.login_cache`).
A login is taken from the cache only when the mailbox row just read from the index is
enabled, carries the same stored hash, and the password gives the same HMAC (compared in
constant time). So a password change, a disable or a delete takes effect at the next login,
a wrong password always gets the full check, and nothing is kept for a failed login. The
trade: a memory dump of the server would expose these HMACs, which are cheaper to attack than
argon2 hashes; `login_cache = 0` turns the cache off.

The table lives in memory shared by every server process (made before the fork, like the
connection limits), so a client is remembered whichever process its next connection reaches.
Mailboxes share a slot when their ids are equal modulo SLOTS; the later one wins it, and the
other then just gets the full check.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import multiprocessing
import secrets
import time

from lmtpd.process_lock import ProcessLock
from lmtpd.store.index import MailboxRow

_DIGEST = hashlib.sha256().digest_size


class LoginCache:
    SLOTS = 4096

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._key = secrets.token_bytes(32)
        self._lock = ProcessLock()
        self._ids = context.RawArray(ctypes.c_int64, self.SLOTS)
        self._expires = context.RawArray(ctypes.c_double, self.SLOTS)  # CLOCK_MONOTONIC
        self._digests = context.RawArray(ctypes.c_char, self.SLOTS * _DIGEST)

    def _digest(self, row: MailboxRow, password: str) -> bytes:
        message = row.password_hash.encode() + b"\0" + password.encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def accepts(self, row: MailboxRow | None, password: str, ttl: float) -> bool:
        """True when this password matched this mailbox's current hash within `ttl`."""
        if row is None or not row.enabled or ttl <= 0:
            return False
        slot = row.id % self.SLOTS
        with self._lock.held():
            if self._ids[slot] != row.id or time.monotonic() > self._expires[slot]:
                return False
            stored = self._digests[slot * _DIGEST:(slot + 1) * _DIGEST]
        return hmac.compare_digest(stored, self._digest(row, password))

    def remember(self, row: MailboxRow, password: str, ttl: float) -> None:
        if ttl <= 0:
            return
        digest = self._digest(row, password)
        slot = row.id % self.SLOTS
        with self._lock.held():
            self._ids[slot] = row.id
            self._expires[slot] = time.monotonic() + ttl
            self._digests[slot * _DIGEST:(slot + 1) * _DIGEST] = digest
