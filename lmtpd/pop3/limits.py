"""POP3 connection counts shared by every server process, so `pop3.max_connections` and
`pop3.max_connections_per_ip` hold for the whole server, not for each process.

The counters live in shared memory made before the workers are forked. Addresses are hashed
into a fixed table: two addresses that share a slot share a budget, which can only refuse
early, never admit more than the limit.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import zlib


class ConnectionLimits:
    SLOTS = 8192

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._lock = context.Lock()
        self._total = context.RawValue(ctypes.c_int, 0)
        self._per_ip = context.RawArray(ctypes.c_int, self.SLOTS)

    def _slot(self, ip: str) -> int:
        return zlib.crc32(ip.encode()) % self.SLOTS

    def acquire(self, ip: str, max_total: int, max_per_ip: int) -> bool:
        """Count a new connection from `ip`; False (and nothing counted) when over a limit."""
        slot = self._slot(ip)
        with self._lock:
            if self._total.value >= max_total or self._per_ip[slot] >= max_per_ip:
                return False
            self._total.value += 1
            self._per_ip[slot] += 1
            return True

    def release(self, ip: str) -> None:
        slot = self._slot(ip)
        with self._lock:
            self._total.value = max(0, self._total.value - 1)
            self._per_ip[slot] = max(0, self._per_ip[slot] - 1)

    @property
    def total(self) -> int:
        return int(self._total.value)
