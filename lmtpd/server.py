"""`lmtpd serve`: one event loop running the LMTP and POP3 listeners, signals and reload."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import signal
import socket
import stat
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

from lmtpd import config as config_module
from lmtpd import metrics
from lmtpd.config import Config, ConfigError, parse_listen
from lmtpd.delivery import Deliverer
from lmtpd.lmtp import LmtpHandler, LmtpSession
from lmtpd.privileges import PrivilegeError, drop_privileges, service_ids
from lmtpd.store.mailboxes import Store
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.server")
SHUTDOWN_GRACE = 30.0


class ServeError(Exception):
    """The server cannot start; the message says what to change."""


def prepare_socket_path(path: Path) -> bool:
    """Replace a stale socket file; refuse when another server is listening on it. True when
    the socket's directory was created here."""
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return created
    if not stat.S_ISSOCK(mode):
        raise ServeError(f"{path} exists and is not a socket; remove it or change lmtp.socket")
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


def notify_systemd(message: str) -> None:
    """sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config)
        self.workers = Workers(self.store)
        self.deliverer = Deliverer(self.workers)
        self.lmtp_handler = LmtpHandler(config, self.deliverer)
        self.servers: list[asyncio.base_events.Server] = []
        self.sessions: weakref.WeakSet[LmtpSession] = weakref.WeakSet()
        self.extra_closers: list[Callable[[], Awaitable[None]]] = []
        self.socket_path: Path | None = None
        self.endpoints: list[str] = []
        self._stop = asyncio.Event()

    def _lmtp_factory(self) -> LmtpSession:
        lmtp = self.config.lmtp
        session = LmtpSession(
            self.lmtp_handler,
            hostname=self.config.hostname,
            ident="LMTP ready",
            data_size_limit=lmtp.max_message_size,
            enable_SMTPUTF8=True,
            timeout=lmtp.timeout,
        )
        self.sessions.add(session)
        return session

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        lmtp = self.config.lmtp
        if lmtp.socket:
            path = Path(lmtp.socket)
            created_dir = prepare_socket_path(path)
            server = await loop.create_unix_server(self._lmtp_factory, str(path))
            self._secure_socket(path, created_dir)
            self.socket_path = path
            self.servers.append(server)
            self.endpoints.append(f"lmtp=unix:{path.resolve()}")
        for listen in lmtp.listen:
            host, port = parse_listen(listen)
            server = await loop.create_server(self._lmtp_factory, host or None, port)
            self.servers.append(server)
            self.endpoints.append(f"lmtp=inet:{listen}")
        await self._start_pop3()
        metrics_endpoint = metrics.start(self.config)
        if metrics_endpoint:
            self.endpoints.append(metrics_endpoint)
        # Sockets are bound (ports below 1024 need root); from here on run unprivileged.
        drop_privileges(self.config)
        if not self.servers:
            raise ServeError("nothing to serve: lmtp.socket, lmtp.listen and pop3 are all off")

    async def _start_pop3(self) -> None:
        try:
            from lmtpd.pop3 import server as pop3_server
        except ImportError:  # POP3 not built into this installation
            return
        servers, endpoints, closer = await pop3_server.start(self.config, self.workers)
        self.servers.extend(servers)
        self.endpoints.extend(endpoints)
        self.extra_closers.append(closer)

    def _secure_socket(self, path: Path, created_dir: bool) -> None:
        lmtp = self.config.lmtp
        os.chmod(path, lmtp.socket_mode)
        ids = service_ids(self.config)
        if ids is not None:
            # Owned by the service user, so it can remove the socket at shutdown.
            os.chown(path, *ids)
            if created_dir:
                os.chown(path.parent, *ids)
        group = lmtp.socket_group or self.config.group
        if group:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise ServeError(f"lmtp.socket_group: no such group {group}") from None
            os.chown(path, -1, gid)

    def reload(self) -> None:
        """SIGHUP: re-read the configuration. Listeners and the store root stay as they were
        (a restart changes those); everything else takes effect for the next transaction."""
        try:
            new = config_module.load(self.config.source)
        except ConfigError as error:
            log.error("reload failed, keeping the old configuration: %s", error)
            return
        if new.store.root != self.config.store.root:
            log.warning("store.root changed: restart lmtpd for that to take effect")
            new.store.root = self.config.store.root
        self.config = new
        self.store.config = new
        self.lmtp_handler.config = new
        self.deliverer.reconfigure(new)
        log.info("configuration reloaded from %s", new.source or "embedded defaults")

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await self.start()
        except PrivilegeError as error:
            raise ServeError(str(error)) from None
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        log.info("lmtpd ready: %s", " ".join(self.endpoints))
        notify_systemd("READY=1")
        await self._stop.wait()
        notify_systemd("STOPPING=1")
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, let transactions in progress finish, then close everything."""
        for server in self.servers:
            server.close()
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        while any(s.in_transaction for s in self.sessions if s.transport is not None):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("shutdown: giving up on transactions still in progress")
                break
            await asyncio.sleep(0.05)
        await self.lmtp_handler.drain()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        for closer in self.extra_closers:
            await closer()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
        await asyncio.get_running_loop().run_in_executor(None, self.workers.close)
        log.info("lmtpd stopped")


def serve(config: Config) -> None:
    async def main() -> None:
        server = Server(config)
        await server.run()

    asyncio.run(main())
