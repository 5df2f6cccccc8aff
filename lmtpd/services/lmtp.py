"""The LMTP service: the Unix socket and TCP listeners, a session per connection, the
connection cap, and the delivery pipeline behind them."""

from __future__ import annotations

import asyncio
import errno
import grp
import logging
import os
import socket
import stat
import weakref
from pathlib import Path

from lmtpd import status
from lmtpd.accept import accept_balanced
from lmtpd.config import Config, tcp_listener
from lmtpd.delivery import Deliverer
from lmtpd.errors import ServeError
from lmtpd.filtering import SieveRunner
from lmtpd.lmtp import LmtpHandler, LmtpSession
from lmtpd.privileges import service_ids
from lmtpd.services import BoundSocket, Runtime, Service
from lmtpd.shared import ConnectionCounts

log = logging.getLogger("lmtpd.lmtp")
# All LMTP connections count under one key: the cap is on the whole server.
_ALL = ""


def prepare_socket_path(path: Path, setting: str = "lmtp.socket") -> bool:
    """Replace a stale socket file; refuse when another server is listening on it. True when
    the socket's directory was created here. `setting` names the key in error messages."""
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return created
    if not stat.S_ISSOCK(mode):
        raise ServeError(f"{path} exists and is not a socket; remove it or change {setting}")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError as error:
        if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
            path.unlink(missing_ok=True)
            return created
        raise ServeError(f"{path}: cannot check the existing socket: {error}") from None
    finally:
        probe.close()
    raise ServeError(f"{path} is in use by another running server")


def unix_listener(config: Config, path: Path, mode: int,
                  setting: str = "lmtp.socket") -> socket.socket:
    """A listening Unix socket at `path` with `mode`, owned by the service user and the
    configured socket group."""
    created_dir = prepare_socket_path(path, setting)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1024)
    sock.setblocking(False)
    os.chmod(path, mode)
    ids = service_ids(config)
    if ids is not None:
        # Owned by the service user, so it can remove the socket at shutdown.
        os.chown(path, *ids)
        if created_dir:
            os.chown(path.parent, *ids)
    group = config.lmtp.socket_group or config.group
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ServeError(f"lmtp.socket_group: no such group {group}") from None
        os.chown(path, -1, gid)
    return sock


class _Refusal(asyncio.Protocol):
    """Says one line and hangs up: the answer to a connection over the cap."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(f"{status.too_many_connections()}\r\n".encode())
        transport.close()


class LmtpService(Service):
    name = "lmtp"

    def __init__(self) -> None:
        super().__init__()
        self.sessions: weakref.WeakSet[LmtpSession] = weakref.WeakSet()
        self.handler: LmtpHandler | None = None
        self.counts: ConnectionCounts | None = None
        self.config: Config | None = None

    def bind(self, config: Config) -> None:
        lmtp = config.lmtp
        if lmtp.socket:
            path = Path(lmtp.socket)
            sock = unix_listener(config, path, lmtp.socket_mode)
            self.sockets.append(BoundSocket(sock, f"lmtp=unix:{path.resolve()}"))
            self.socket_path = path
        for listen in lmtp.listen:
            self.sockets.append(BoundSocket(tcp_listener(listen), f"lmtp=inet:{listen}"))

    async def start(self, runtime: Runtime) -> None:
        self.config = runtime.config
        self.counts = runtime.shared.lmtp
        sieve = await asyncio.get_running_loop().run_in_executor(None, SieveRunner,
                                                                 runtime.config)
        self.handler = LmtpHandler(runtime.config, Deliverer(runtime.workers, sieve))
        for bound in self.sockets:
            self.listeners.append(accept_balanced(bound.sock, self._session,
                                                  runtime.shared.board))

    def _session(self) -> asyncio.BaseProtocol:
        assert self.config is not None and self.counts is not None and self.handler
        lmtp = self.config.lmtp
        counts = self.counts
        if not counts.acquire(_ALL, lmtp.max_connections, lmtp.max_connections):
            log.warning("lmtp: connection refused: lmtp.max_connections (%d) reached",
                        lmtp.max_connections)
            return _Refusal()
        session = LmtpSession(
            self.handler,
            hostname=self.config.hostname,
            ident="LMTP ready",
            data_size_limit=lmtp.max_message_size,
            enable_SMTPUTF8=True,
            timeout=lmtp.timeout,
            on_close=lambda: counts.release(_ALL),
        )
        self.sessions.add(session)
        return session

    async def reconfigure(self, config: Config) -> None:
        assert self.handler is not None
        sieve = await asyncio.get_running_loop().run_in_executor(None, SieveRunner, config)
        # Swapped in whole, in one step of the event loop: no delivery sees half of it.
        self.config = config
        self.handler.config = config
        self.handler.deliverer.reconfigure(config, sieve)

    def busy(self) -> bool:
        return any(s.in_transaction for s in self.sessions if s.transport is not None)

    async def close(self) -> None:
        if self.handler is not None:
            await self.handler.drain()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
