"""A counter that moves whenever accounts change: mailboxes, aliases, quotas, Sieve scripts.

It lets a server keep what RCPT looks up in memory and still see a change made by `lmtpd
mailbox ...` in another process at once. The counter is 8 bytes in `<index>-accounts`; the
server maps the file shared, so looking at it is a memory read, not a system call or a trip
to the index thread. Writers bump it after their change is committed (Index.transaction), so
a reader that saw the old value may have read the old data, never the other way round.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path

_FORMAT = "<Q"
SIZE = struct.calcsize(_FORMAT)


def path_for(index_path: Path) -> Path:
    return Path(f"{index_path}-accounts")


def open_for_bump(index_path: Path) -> int:
    """The counter file opened for writing (created if missing); raises OSError when it
    cannot be, so that a change servers would not notice is refused before it is made."""
    return os.open(path_for(index_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def bump_open(fd: int) -> None:
    """Add one to the counter behind `fd` (from open_for_bump)."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        raw = os.pread(fd, SIZE, 0)
        value = struct.unpack(_FORMAT, raw)[0] if len(raw) == SIZE else 0
        os.pwrite(fd, struct.pack(_FORMAT, value + 1), 0)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def bump(index_path: Path) -> None:
    """Add one to the counter (creating it)."""
    fd = open_for_bump(index_path)
    try:
        bump_open(fd)
    finally:
        os.close(fd)


class Generation:
    """The counter, mapped for reading."""

    def __init__(self, mapping: mmap.mmap) -> None:
        self._map = mapping

    @classmethod
    def open(cls, index_path: Path) -> Generation | None:
        """The mapped counter, created if missing; None if it cannot be mapped (then nothing
        should be cached). A counter that root's CLI created before the server first ran is
        only readable by the service user, which is all a reader needs."""
        path = path_for(index_path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < SIZE:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_size < SIZE:
                    os.ftruncate(fd, SIZE)
                fcntl.flock(fd, fcntl.LOCK_UN)
            return cls(mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ))
        except OSError:
            return None
        finally:
            os.close(fd)

    def read(self) -> int:
        return int(struct.unpack_from(_FORMAT, self._map)[0])

    def close(self) -> None:
        self._map.close()
