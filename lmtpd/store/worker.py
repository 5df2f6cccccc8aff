"""Runs blocking store work off the event loop.

SQLite work goes to a single thread that owns the index connection, so writers never fight
over the database lock; file writes and fsyncs go to a pool, so they overlap.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from lmtpd.store.mailboxes import Store

P = ParamSpec("P")
T = TypeVar("T")


class Workers:
    def __init__(self, store: Store, io_threads: int = 8) -> None:
        self.store = store
        self._db = ThreadPoolExecutor(1, thread_name_prefix="lmtpd-index")
        self._io = ThreadPoolExecutor(io_threads, thread_name_prefix="lmtpd-io")

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the index thread (anything that touches SQLite)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, functools.partial(fn, *args, **kwargs))

    async def io(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` in the file pool (Maildir writes, fsync, reads, CPU-heavy checks)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._io.shutdown(wait=True)
        self._db.shutdown(wait=True)
        self.store.close()
