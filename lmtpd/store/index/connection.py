"""One connection to the index file: opening it, write transactions, read snapshots.

An index object must be used from one thread at a time; the server gives it a thread of its
own (lmtpd.store.worker).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from lmtpd.store import generation
from lmtpd.store.index import schema
from lmtpd.store.index.rows import IndexFailure

# How long a writer waits for another process's write lock before the operation fails (a
# delivery then answers 451 and the MTA retries).
BUSY_TIMEOUT = 10.0


def _open_writer_lock(path: Path) -> int | None:
    try:
        # Read-only is enough for flock(), so a server running as the service user can share
        # the file with a CLI run as root, whichever created it.
        return os.open(f"{path}-writer", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None


class Database:
    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT,
                 durable: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._busy_timeout = busy_timeout
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self.db = sqlite_utils.Database(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            # The message rows are a cache that reindex rebuilds; account changes made by the
            # CLI ask for full durability.
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._in_transaction = False
            self._accounts_changed = False
            self._counter: int | None = None
            self._wait_until: float | None = None  # see limit_waits
            self._writer_lock = _open_writer_lock(path)
            self.identity = self._file_identity()
            if schema.version(conn) != schema.SCHEMA_VERSION:
                with self.transaction():
                    schema.upgrade(self.db)
        except BaseException:
            conn.close()
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def _file_identity(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return stat.st_dev, stat.st_ino

    def replaced(self) -> bool:
        """Whether the file at the index's path is no longer the one this connection has open
        (an index restored from a backup): the connection must then be opened again."""
        try:
            return self._file_identity() != self.identity
        except FileNotFoundError:
            return True

    def limit_waits(self, deadline: float) -> None:
        """Wait for other processes' locks only until `deadline` (time.monotonic()), all
        waits together, instead of up to the busy timeout at each try. For a command that
        must answer its caller in time (`lmtpd deliver`): once the index stays locked, every
        later try fails at once."""
        self._wait_until = deadline

    def _shorten_busy_wait(self) -> None:
        if self._wait_until is not None:
            left = max(0.0, self._wait_until - time.monotonic())
            self.conn.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")

    def close(self) -> None:
        self.conn.close()
        for fd in (self._writer_lock, self._counter):
            if fd is not None:
                os.close(fd)
        self._writer_lock = self._counter = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE so a writer waits for the lock up front instead of failing to
        upgrade a read lock half-way. Nested use joins the outer transaction."""
        if self._in_transaction:
            yield
            return
        locked = self._lock_writers()
        try:
            self._shorten_busy_wait()
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._in_transaction = False
                self.conn.execute("ROLLBACK")
                raise
            self._in_transaction = False
            self.conn.execute("COMMIT")
        finally:
            if locked:
                fcntl.flock(self._writer_lock, fcntl.LOCK_UN)
            changed, self._accounts_changed = self._accounts_changed, False
        if changed:
            # After the commit: a server that sees the new value reads the new accounts.
            try:
                generation.bump_open(self._counter_fd())
            except OSError as error:
                raise IndexFailure(
                    f"the change is saved, but running servers were not told of it "
                    f"({generation.path_for(self.path)}: {error.strerror}); they answer "
                    f"from their cache for up to a minute") from None

    def _counter_fd(self) -> int:
        if self._counter is None:
            self._counter = generation.open_for_bump(self.path)
        return self._counter

    @contextmanager
    def account_change(self) -> Iterator[None]:
        """A write to mailboxes, aliases or Sieve scripts: servers drop what they cached of
        accounts once it is committed (lmtpd.store.generation). Refused before anything
        changes when the counter that tells them cannot be written."""
        try:
            self._counter_fd()
        except OSError as error:
            raise IndexFailure(
                f"cannot write {generation.path_for(self.path)} ({error.strerror}), so "
                f"running servers would not notice this change; run this as the user that "
                f"owns the store") from None
        with self.transaction():
            self._accounts_changed = True
            yield

    def _lock_writers(self) -> bool:
        """Queue for the write lock on a flock() of `<index>-writer` before BEGIN IMMEDIATE.

        SQLite makes a second writer poll with sleeps of growing length, which add up under
        load with several server processes committing; a blocked flock() wakes as soon as
        the holder lets go, and the kernel releases it when a holder dies. SQLite's own
        locking still decides; this only orders the queue, so a writer that cannot open
        the file goes without."""
        if self._writer_lock is None:
            return False
        try:
            if self._wait_until is None:
                fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
                return True
            while True:
                try:
                    fcntl.flock(self._writer_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= self._wait_until:
                        return False
                    time.sleep(0.005)
        except OSError:
            return False

    @contextmanager
    def patience(self, seconds: float) -> Iterator[None]:
        """Wait at most `seconds` for another process's lock within the block, instead of
        BUSY_TIMEOUT: for a reader whose caller would rather hear "try again" soon."""
        self.conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads in one read transaction: one consistent view, and one round of WAL
        locking instead of one per query. No writes inside."""
        if self._in_transaction or self.conn.in_transaction:
            yield
            return
        self._shorten_busy_wait()
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")
