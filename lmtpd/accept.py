"""Spreads connections evenly over the server processes.

Every server process listens on the same sockets. Left to asyncio, whichever process wakes
first accepts everything queued (up to the backlog at once), so the four long-lived sessions
an MTA opens under load can all land in one process while the others idle, and the busy
process's interpreter becomes the limit (bench/README.md has the measurements). A
BalancedListener accepts one connection at a time and first
looks at a board of open connections per process, kept in shared memory: while another
process has fewer, it steps back for a moment and lets that one accept. A process that does
not take the connection within PATIENCE (stuck, or gone) does not hold it up: the next
look accepts regardless.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import multiprocessing
import socket
from collections.abc import Callable

log = logging.getLogger("lmtpd.accept")

# How long a busier process steps back before looking again, and for how long in a row at
# most before it accepts anyway.
STEP_BACK = 0.002
PATIENCE = 0.05
# Looks further apart than this belong to different waits: the connection waited for last
# time was taken by another process, and the next one starts a wait of its own.
SAME_WAIT = 10 * STEP_BACK
# Out of file descriptors or memory: asyncio's own pause in that case.
RESOURCE_PAUSE = 1.0
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# A slot nobody should ever wait for: a process that has ended.
_RETIRED = 1 << 30


class LoadBoard:
    """Open connections per server process, in memory shared across the fork. A process
    writes only its own slot, so no lock is needed; reading the others' slots a moment late
    only makes a choice slightly less even."""

    def __init__(self, processes: int) -> None:
        self._counts = multiprocessing.get_context("fork").RawArray(
            ctypes.c_int, max(1, processes))
        self.slot = 0

    def opened(self) -> None:
        self._counts[self.slot] += 1

    def closed(self) -> None:
        self._counts[self.slot] -= 1

    def busier_than_another(self) -> bool:
        mine = self._counts[self.slot]
        return any(count < mine for count in self._counts)

    def retire(self, slot: int) -> None:
        """A process has ended: never leave a connection to it again."""
        self._counts[slot] = _RETIRED

    def enter(self, slot: int) -> None:
        """A process starts on `slot` (a new one, or the replacement of one that ended)."""
        self.slot = slot
        self._counts[slot] = 0


ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class BalancedListener:
    """Accepts on a shared listening socket for one process, taking its turn by the board.
    Quacks like the parts of asyncio.Server that the server uses (`sockets`, `close`)."""

    def __init__(self, sock: socket.socket, factory: ProtocolFactory, board: LoadBoard) -> None:
        self._sock = sock
        self._factory = factory
        self._board = board
        self._loop = asyncio.get_running_loop()
        self._waiting_since: float | None = None
        self._last_step_back = 0.0
        self._resume: asyncio.TimerHandle | None = None
        self._serving = False
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,)

    def start(self) -> None:
        self._sock.setblocking(False)
        self._serving = True
        self._loop.add_reader(self._sock.fileno(), self._on_readable)

    def close(self) -> None:
        """Stop accepting (the socket stays open: it belongs to every process)."""
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._sock.fileno())
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None

    def _pause(self, seconds: float) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._resume = self._loop.call_later(seconds, self._unpause)

    def _unpause(self) -> None:
        self._resume = None
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        if self._board.busier_than_another():
            now = self._loop.time()
            if self._waiting_since is None or now - self._last_step_back > SAME_WAIT:
                self._waiting_since = now
            if now - self._waiting_since < PATIENCE:
                self._last_step_back = now
                self._pause(STEP_BACK)
                return
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            # Another process took it.
            self._waiting_since = None
            return
        except OSError as error:
            if error.errno in _RESOURCE_ERRORS:
                log.error("accept on %s failed: %s; pausing", self._sock.getsockname(), error)
                self._pause(RESOURCE_PAUSE)
            # Anything else (a connection reset before it was accepted) concerns that
            # connection only.
            return
        self._waiting_since = None
        conn.setblocking(False)
        # Counted from the accept itself: the session's protocol is set up a loop turn
        # later, and a burst of connections must already see this one.
        release = _Release(self._board)
        self._board.opened()
        task = self._loop.create_task(self._connect(conn, release))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket, release: _Release) -> None:
        def counted() -> asyncio.BaseProtocol:
            protocol = self._factory()
            lost = protocol.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                release()
                lost(exc)

            protocol.connection_lost = connection_lost  # type: ignore[method-assign]
            return protocol

        try:
            await self._loop.connect_accepted_socket(counted, conn)
        except Exception as error:
            log.debug("setting up an accepted connection failed: %s", error)
            release()
            conn.close()


class _Release:
    """Takes a connection off the board, once, whichever way it ends."""

    def __init__(self, board: LoadBoard) -> None:
        self._board: LoadBoard | None = board

    def __call__(self) -> None:
        if self._board is not None:
            self._board.closed()
            self._board = None


def accept_balanced(sock: socket.socket, factory: ProtocolFactory, board: LoadBoard
                    ) -> BalancedListener:
    listener = BalancedListener(sock, factory, board)
    listener.start()
    return listener
