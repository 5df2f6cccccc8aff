"""`lmtpd serve`: event loops running the LMTP and POP3 listeners, signals and reload.

The LMTP and POP3 sockets are bound once, before anything else; with `processes` > 1 the
main process then forks worker processes that accept on the same sockets (as Dovecot runs a
process per connection), so delivery and retrieval use every core. What must be shared lives
in the index or the kernel: the login throttle in the index, the POP3 mailbox lock as a
flock() on a file in the Maildir. The metrics endpoint and the socket file stay with the main
process, which forwards SIGTERM and SIGHUP to the workers and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import grp
import logging
import os
import signal
import socket
import stat
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from lmtpd import config as config_module
from lmtpd import metrics
from lmtpd.accept import BalancedListener, LoadBoard, accept_balanced
from lmtpd.config import Config, ConfigError, tcp_listener
from lmtpd.delivery import Deliverer
from lmtpd.lmtp import LmtpHandler, LmtpSession
from lmtpd.pop3.limits import ConnectionLimits
from lmtpd.pop3.login_cache import LoginCache
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


@dataclass
class Listeners:
    """Listening sockets, bound before any process is forked (and before dropping root)."""

    sockets: list[tuple[socket.socket, bool, str]] = field(default_factory=list)  # unix?, label
    socket_path: Path | None = None
    pop3: list[tuple[socket.socket, bool, str]] = field(default_factory=list)
    pop3_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    pop3_logins: LoginCache = field(default_factory=LoginCache)
    processes: int = 1
    # Open connections per process, so each connection goes to the least busy one.
    board: LoadBoard = field(default_factory=lambda: LoadBoard(1))


def bind_listeners(config: Config) -> Listeners:
    from lmtpd.pop3 import server as pop3_server

    count = process_count(config)
    listeners = Listeners(processes=count, board=LoadBoard(count))
    lmtp = config.lmtp
    if lmtp.socket:
        path = Path(lmtp.socket)
        created_dir = prepare_socket_path(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.listen(1024)
        secure_socket(config, path, created_dir)
        listeners.sockets.append((sock, True, f"lmtp=unix:{path.resolve()}"))
        listeners.socket_path = path
    for listen in lmtp.listen:
        listeners.sockets.append((tcp_listener(listen), False, f"lmtp=inet:{listen}"))
    for sock, _, _ in listeners.sockets:
        sock.setblocking(False)
    listeners.pop3 = pop3_server.bind(config)
    return listeners


def secure_socket(config: Config, path: Path, created_dir: bool) -> None:
    lmtp = config.lmtp
    os.chmod(path, lmtp.socket_mode)
    ids = service_ids(config)
    if ids is not None:
        # Owned by the service user, so it can remove the socket at shutdown.
        os.chown(path, *ids)
        if created_dir:
            os.chown(path.parent, *ids)
    group = lmtp.socket_group or config.group
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ServeError(f"lmtp.socket_group: no such group {group}") from None
        os.chown(path, -1, gid)


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
    """One process's event loop serving LMTP and POP3. The main one (`worker=False`) also runs
    the metrics endpoint and supervises the worker processes."""

    def __init__(self, config: Config, listeners: Listeners, *, worker: bool = False,
                 children: list[int] | None = None) -> None:
        self.config = config
        self.listeners = listeners
        self.worker = worker
        self.children = children if children is not None else []
        # Worker processes take board slots 1, 2, ... in the order they were forked.
        self.child_slots = {pid: slot for slot, pid in enumerate(self.children, start=1)}
        self.store = Store(config)
        self.workers = Workers(self.store)
        self.deliverer = Deliverer(self.workers)
        self.lmtp_handler = LmtpHandler(config, self.deliverer)
        self.servers: list[BalancedListener] = []
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
        for sock, _, label in self.listeners.sockets:
            self.servers.append(accept_balanced(sock, self._lmtp_factory, self.listeners.board))
            self.endpoints.append(label)
        await self._start_pop3()
        if not self.worker:
            self.socket_path = self.listeners.socket_path
            metrics_endpoint = metrics.start(self.config)
            if metrics_endpoint:
                self.endpoints.append(metrics_endpoint)
            if self.children:
                self.endpoints.append(f"processes={len(self.children) + 1}")
        # Sockets are bound (ports below 1024 need root); from here on run unprivileged.
        drop_privileges(self.config)
        if not self.servers:
            raise ServeError("nothing to serve: lmtp.socket, lmtp.listen and pop3 are all off")

    async def _start_pop3(self) -> None:
        from lmtpd.pop3 import server as pop3_server

        servers, endpoints, closer = await pop3_server.start(
            self.config, self.workers, self.listeners.pop3, self.listeners.pop3_limits,
            self.listeners.board, self.listeners.pop3_logins)
        self.servers.extend(servers)
        self.endpoints.extend(endpoints)
        self.extra_closers.append(closer)

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
        self._signal_children(signal.SIGHUP)
        if not self.worker:
            log.info("configuration reloaded from %s", new.source or "embedded defaults")

    def _signal_children(self, signum: int) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

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
        if self.worker:
            await self._stop.wait()
            await self.shutdown()
            return
        log.info("lmtpd ready: %s", " ".join(self.endpoints))
        notify_systemd("READY=1")
        watcher = loop.create_task(self._watch_children())
        await self._stop.wait()
        watcher.cancel()
        notify_systemd("STOPPING=1")
        self._signal_children(signal.SIGTERM)
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
        await self._reap_children(SHUTDOWN_GRACE + 5)
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
        await asyncio.get_running_loop().run_in_executor(None, self.workers.close)
        if not self.worker:
            log.info("lmtpd stopped")

    async def _watch_children(self) -> None:
        """A worker that dies is logged and not replaced (forking a process that runs threads
        is unsafe); the main process and the other workers keep serving."""
        while self.children:
            await asyncio.sleep(0.5)
            for pid in list(self.children):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.children.remove(pid)
                    self.listeners.board.retire(self.child_slots[pid])
                    metrics.process_exited(pid)
                    log.error("worker process %d ended unexpectedly (status %d)", pid,
                              status)

    async def _reap_children(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.children:
            for pid in list(self.children):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.children.remove(pid)
                    metrics.process_exited(pid)
            if asyncio.get_running_loop().time() > deadline:
                log.warning("shutdown: killing worker processes %s", self.children)
                self._signal_children(signal.SIGKILL)
                deadline += 5
            await asyncio.sleep(0.05)


def _run(coro):
    if os.environ.get("LMTPD_UV"):
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def process_count(config: Config) -> int:
    # Two per CPU: a process's interpreter does one thing at a time, and while its sessions
    # wait on a thread hop or an fsync another process can use the core. Measured at four
    # sessions of 100 KB messages on 2 CPUs: 4 processes 812 msg/s, 2 processes 736 msg/s.
    return config.processes or 2 * (os.cpu_count() or 1)


def serve(config: Config) -> None:
    import sys
    if os.environ.get("LMTPD_SWITCH"):
        sys.setswitchinterval(float(os.environ["LMTPD_SWITCH"]))
    listeners = bind_listeners(config)
    count = listeners.processes
    if count > 1 and config.metrics.listen:
        # Cleared at every start; beside the store so it needs no directory of its own.
        shared = config.store.root / "metrics"
        shared.mkdir(parents=True, exist_ok=True, mode=0o700)
        ids = service_ids(config)
        if ids is not None:
            os.chown(shared, *ids)
        metrics.use_shared_directory(str(shared))
    metrics.prepare()
    children: list[int] = []
    # Fork before any thread or database connection exists in this process.
    for slot in range(1, count):
        pid = os.fork()
        if pid == 0:
            listeners.board.slot = slot
            _worker_main(config, listeners)
        children.append(pid)

    async def main() -> None:
        await Server(config, listeners, children=children).run()

    try:
        _run(main())
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _worker_main(config: Config, listeners: Listeners) -> None:
    """A worker process: serve until SIGTERM (or the main process's death)."""
    code = 0
    try:
        _die_with_parent()
        drop_privileges(config)

        async def main() -> None:
            await Server(config, listeners, worker=True).run()

        _run(main())
    except BaseException:
        log.exception("worker process failed")
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the kernel sends SIGTERM to this worker if the main process dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)
    if os.getppid() == 1:
        os._exit(0)
