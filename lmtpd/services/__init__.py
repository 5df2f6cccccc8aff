"""The listeners lmtpd serves (LMTP, POP3, metrics, ...), each behind one small interface.

A service's life: `bind()` in the supervisor, before any worker is forked and while still
root (ports below 1024); `start(runtime)` in every worker process, which accepts on the bound
sockets; `stop_accepting()` and `close()` in the worker at shutdown; `cleanup()` in the
supervisor once every worker has ended (a Unix socket file is removed then).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from lmtpd.accept import BalancedListener
from lmtpd.config import Config
from lmtpd.shared import SharedState
from lmtpd.store.worker import Workers


@dataclass
class BoundSocket:
    sock: socket.socket
    label: str  # as the ready line shows it: "lmtp=unix:/run/lmtpd/lmtp.sock"
    implicit_tls: bool = False


@dataclass
class Runtime:
    """What the services of one worker process share."""

    config: Config
    workers: Workers
    shared: SharedState
    process: int  # this worker's row in the shared tables


class Service:
    """Base of every listener. The defaults do nothing, except that the listeners a worker
    accepts on (`listeners`) stop with `stop_accepting`, and a Unix socket file made by
    `bind` (`socket_path`) goes with `cleanup`."""

    name = "service"

    def __init__(self) -> None:
        self.sockets: list[BoundSocket] = []
        self.listeners: list[BalancedListener] = []
        self.socket_path: Path | None = None

    def bind(self, config: Config) -> None:
        """Check what can be checked before serving, and bind the sockets (supervisor)."""

    async def start(self, runtime: Runtime) -> None:
        """Start accepting in this worker."""

    async def reconfigure(self, config: Config) -> None:
        """A reload: the new configuration applies from the next connection or transaction.
        What takes time to build for it is built off the event loop, then swapped in."""

    def busy(self) -> bool:
        """Whether work that must finish before the process stops is in progress."""
        return False

    def stop_accepting(self) -> None:
        """Take no new connections (the listening sockets stay open: they are shared)."""
        for listener in self.listeners:
            listener.close()

    async def close(self) -> None:
        """End this worker's sessions."""

    def cleanup(self) -> None:
        """In the supervisor after the last worker ended: remove files made by bind()."""
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)

    @property
    def labels(self) -> list[str]:
        return [bound.label for bound in self.sockets]
