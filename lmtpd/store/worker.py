"""Runs blocking work off the event loop, in pools bounded each for its own job.

SQLite work goes to a single thread that owns the index connection, so writers never fight
over the database lock; file writes, fsyncs, reads and Sieve go to the disk pool, so they
overlap; password checks have a small pool of their own (each argon2 check takes 64 MiB, so
their number bounds memory, and a login flood cannot hold up Maildir writes); outgoing mail
(redirect, vacation) has its own, so a slow relay cannot either.

Index rows of concurrent deliveries are committed together (`write_then_record`): while the
index thread is busy, rows queue up and its next turn writes them all in one transaction, so
a burst of deliveries pays for one commit instead of one each. The file pool hands a written
message's row straight to that queue, and the index thread answers the waiting coroutine:
every hop between the event loop and a thread costs wake-ups and a turn at the GIL (a
large share of a delivery's time under load: bench/README.md), so a delivery makes as few
as it can.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, ParamSpec, TypeVar

from lmtpd.store.mailboxes import Store

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

class _Pending(NamedTuple):
    """A row waiting for the next group commit, and who waits for its outcome."""

    record: Callable[[], Any]
    future: asyncio.Future[Any]


# Concurrent password checks per process; with argon2's 64 MiB each, the peak memory of
# logins is HASH_THREADS x 64 MiB per server process.
HASH_THREADS = 1
SUBMIT_THREADS = 4


class Workers:
    def __init__(self, store: Store, io_threads: int = 8) -> None:
        self.store = store
        self._db = ThreadPoolExecutor(1, thread_name_prefix="lmtpd-index")
        self._io = ThreadPoolExecutor(io_threads, thread_name_prefix="lmtpd-io")
        self._hash = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="lmtpd-hash")
        self._submit = ThreadPoolExecutor(SUBMIT_THREADS, thread_name_prefix="lmtpd-submit")
        self._group: list[_Pending] = []
        self._group_lock = threading.Lock()
        self._group_scheduled = False

    def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Run `fn` on the index thread (anything that touches SQLite)."""
        return _run_in(self._db, functools.partial(fn, *args, **kwargs))

    def db_from_pool(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """From a thread of another pool (never the event loop, never the index thread):
        run `fn` on the index thread and wait for it."""
        return self._db.submit(fn, *args, **kwargs).result()

    def io(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Run `fn` in the disk pool (Maildir writes, fsync, reads, Sieve)."""
        return _run_in(self._io, functools.partial(fn, *args, **kwargs))

    def hash(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Run a password check or hash in the bounded hashing pool."""
        return _run_in(self._hash, functools.partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Run an outgoing submission (SMTP or sendmail) in its own pool."""
        return _run_in(self._submit, functools.partial(fn, *args, **kwargs))

    async def write_then_record(self, write: Callable[[], T], record: Callable[[T], R]) -> R:
        """`write()` in the file pool, then `record(written)` in the next group commit on
        the index thread, which answers the awaiting coroutine itself: two thread hops
        instead of four round trips through the event loop. `record` must only use the
        store's index (it joins the group's transaction)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()

        def in_pool() -> None:
            try:
                written = write()
            except BaseException as error:
                loop.call_soon_threadsafe(_settle, future, None, error)
                return
            self._enqueue(loop, functools.partial(record, written), future)

        self._io.submit(in_pool)
        return await future

    def _enqueue(self, loop: asyncio.AbstractEventLoop, call: Callable[[], Any],
                 future: asyncio.Future[Any]) -> None:
        with self._group_lock:
            self._group.append(_Pending(call, future))
            schedule = not self._group_scheduled
            self._group_scheduled = True
        if schedule:
            self._db.submit(self._commit_group, loop)

    def _commit_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the index thread: every queued row in one transaction. If any row fails, the
        transaction is rolled back and the rows are written one by one, so only the failing
        delivery sees the error (and none is reported stored without its row committed)."""
        with self._group_lock:
            batch, self._group = self._group, []
            self._group_scheduled = False
        outcomes: list[tuple[Any, BaseException | None]] = []
        index = self.store.index
        try:
            with index.transaction():
                outcomes = [(pending.record(), None) for pending in batch]
        except Exception:
            if index.conn.in_transaction:  # a failed COMMIT leaves the transaction open
                index.conn.rollback()
            outcomes = []
            for pending in batch:
                try:
                    outcomes.append((pending.record(), None))
                except Exception as error:
                    outcomes.append((None, error))
        for pending, (result, error) in zip(batch, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, pending.future, result, error)

    def close(self) -> None:
        self._submit.shutdown(wait=True)
        self._hash.shutdown(wait=True)
        self._io.shutdown(wait=True)
        self._db.shutdown(wait=True)
        self.store.close()


def _run_in(executor: ThreadPoolExecutor, call: Callable[[], T]) -> asyncio.Future[T]:
    return asyncio.get_running_loop().run_in_executor(executor, call)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
