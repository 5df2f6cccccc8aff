"""A lock shared by the server processes that the kernel releases when its holder dies."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ProcessLock:
    """Mutual exclusion across the server processes and the threads of each."""

    def __init__(self) -> None:
        # An anonymous file: record locks need one, and nothing on disk is left behind.
        self._fd = os.memfd_create("lmtpd-lock", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, 1)
        # Record locks belong to a process, so the threads of one need a lock of their own.
        self._threads = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, 0)
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, 0)
