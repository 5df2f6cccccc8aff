"""The delivery trace behind `lmtpd trace`: rows written in batches shortly after the replies.

The trace is a convenience: its rows are written after the replies go out, those of the
deliveries within TRACE_DELAY together (one index write instead of one per delivery), and a
failure to write them never fails a delivery. `drain()` writes what is queued.
"""

from __future__ import annotations

import asyncio
import logging

from lmtpd.store.index import TraceBatch
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.delivery")
TRACE_DELAY = 0.05


class TraceLog:
    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self._queued: list[TraceBatch] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing: set[asyncio.Future[None]] = set()

    def add(self, batch: TraceBatch) -> None:
        self._queued.append(batch)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(TRACE_DELAY, self._flush)

    def _flush(self) -> None:
        self._timer = None
        batches, self._queued = self._queued, []
        if batches:
            writing = asyncio.ensure_future(self._write(batches))
            self._writing.add(writing)
            writing.add_done_callback(self._writing.discard)

    async def _write(self, batches: list[TraceBatch]) -> None:
        try:
            await self.workers.db(self.workers.store.index.record_outcomes_batches, batches)
        except Exception as error:
            log.warning("recording %d outcomes failed: %s", len(batches), error)

    async def drain(self) -> None:
        """Write the rows still queued."""
        if self._timer is not None:
            self._timer.cancel()
            self._flush()
        while self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
