"""What RCPT looked up, per address and per process, valid while the accounts generation
(lmtpd.store.generation) stays the same."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Generic, TypeVar

from lmtpd.store.generation import Generation

V = TypeVar("V")


class RcptCache(Generic[V]):
    """What RCPT looked up per address, kept while the accounts generation stays the same
    (lmtpd.store.generation: any change to mailboxes, aliases or scripts moves it, seen at
    the next RCPT) and for at most TTL seconds. A hit costs no trip to the index thread, the
    largest share of an RCPT's time under load."""

    TTL = 60.0
    MAX_ENTRIES = 10_000

    def __init__(self, index_path: Path) -> None:
        self._index_path = index_path
        self._generation: Generation | None = None
        self._opened = False
        self._entries: dict[str, tuple[int, float, V]] = {}

    def open(self) -> None:
        """Map the counter: on first use from the index thread (a file to open, and after
        privileges were dropped, so a file made here is the service user's)."""
        if not self._opened:
            self._generation = Generation.open(self._index_path)
            self._opened = True

    def generation(self) -> int | None:
        """The counter as it is now; None (cache nothing) until it is mapped."""
        return self._generation.read() if self._generation is not None else None

    def get(self, address: str) -> V | None:
        entry = self._entries.get(address)
        if entry is None:
            return None
        generation, expires, value = entry
        if generation != self.generation() or time.monotonic() > expires:
            del self._entries[address]
            return None
        return value

    def put(self, address: str, generation: int | None, value: V) -> None:
        if generation is None:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[address] = (generation, time.monotonic() + self.TTL, value)

    def clear(self) -> None:
        self._entries.clear()
