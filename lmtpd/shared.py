"""State shared by every server process: made once before the first fork, in memory that the
processes map in common, with locks that end with their holder.

Each process writes only its own row of each table (its connections per client address, its
open connections on the load board), so when a process dies the supervisor gives back all it
held by clearing that row, and the process that replaces it starts on the same row. Admission
(look at the sums, then count) holds a ProcessLock: a POSIX record lock, which the kernel
releases when its holder dies, unlike a semaphore in shared memory.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import zlib

from lmtpd.accept import LoadBoard
from lmtpd.login_cache import LoginCache
from lmtpd.process_lock import ProcessLock


class ConnectionCounts:
    """Open connections, overall and per client address, for one kind of listener, counted
    for the whole server. Addresses are hashed into SLOTS: two that share a slot share a
    budget, which can only refuse early, never admit more than a limit."""

    SLOTS = 4096

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("fork")
        self._processes = max(1, processes)
        self._lock = ProcessLock()
        self._total = context.RawArray(ctypes.c_int, self._processes)
        self._per_address = context.RawArray(ctypes.c_int, self._processes * self.SLOTS)
        self.process = 0  # the row this process writes

    def _slot(self, address: str) -> int:
        return zlib.crc32(address.encode()) % self.SLOTS

    def acquire(self, address: str, max_total: int, max_per_address: int) -> bool:
        """Count a new connection from `address`; False (and nothing counted) when over a
        limit."""
        slot = self._slot(address)
        with self._lock.held():
            if self.total >= max_total or self._address_count(slot) >= max_per_address:
                return False
            self._total[self.process] += 1
            self._per_address[self.process * self.SLOTS + slot] += 1
            return True

    def release(self, address: str) -> None:
        slot = self._slot(address)
        with self._lock.held():
            if self._total[self.process] > 0:
                self._total[self.process] -= 1
            cell = self.process * self.SLOTS + slot
            if self._per_address[cell] > 0:
                self._per_address[cell] -= 1

    def _address_count(self, slot: int) -> int:
        per = self._per_address
        return sum(per[p * self.SLOTS + slot] for p in range(self._processes))

    @property
    def total(self) -> int:
        return sum(self._total)

    def forget(self, process: int) -> None:
        """A process has ended: its connections are closed, give them back."""
        with self._lock.held():
            self._total[process] = 0
            start = process * self.SLOTS
            ctypes.memset(ctypes.addressof(self._per_address) + start * ctypes.sizeof(ctypes.c_int),
                          0, self.SLOTS * ctypes.sizeof(ctypes.c_int))


class SharedState:
    """Everything the server processes share, made before the first fork."""

    def __init__(self, processes: int) -> None:
        self.processes = max(1, processes)
        self.board = LoadBoard(self.processes)
        self.lmtp = ConnectionCounts(self.processes)
        self.pop3 = ConnectionCounts(self.processes)
        self.managesieve = ConnectionCounts(self.processes)
        self.logins = LoginCache()

    def enter(self, process: int) -> None:
        """In a newly forked worker: write row `process` from now on."""
        self.board.enter(process)
        for counts in (self.lmtp, self.pop3, self.managesieve):
            counts.process = process

    def forget(self, process: int) -> None:
        """In the supervisor, once worker `process` has ended: give back what it held."""
        for counts in (self.lmtp, self.pop3, self.managesieve):
            counts.forget(process)
        self.board.retire(process)
