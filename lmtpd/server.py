"""`lmtpd serve`: the supervisor. It binds every listener (while still root), forks the worker
processes that serve them (lmtpd.worker), replaces a worker that dies, forwards SIGHUP and
SIGTERM, and removes the socket files at the end. It serves nothing itself and runs no
threads, so forking a replacement is always safe.

What the workers share lives in the index, the kernel (flock on the POP3 mailbox lock) or
memory mapped before the first fork (lmtpd.shared); when a worker dies, the supervisor gives
back what it held there.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from lmtpd import config as config_module
from lmtpd import metrics, worker
from lmtpd.config import Config, ConfigError
from lmtpd.errors import ServeError
from lmtpd.privileges import PrivilegeError, drop_privileges, service_ids, store_root_warning
from lmtpd.services import Service
from lmtpd.services.lmtp import LmtpService
from lmtpd.services.managesieve import ManageSieveService
from lmtpd.services.metrics import MetricsService
from lmtpd.services.pop3 import Pop3Service
from lmtpd.shared import SharedState
from lmtpd.store.index import Index

__all__ = ["ServeError", "serve"]

log = logging.getLogger("lmtpd.server")
# A worker that dies sooner than this after it started is replaced only after RESTART_DELAY,
# so that one failing at start-up cannot make the supervisor spin.
QUICK_DEATH = 1.0
RESTART_DELAY = 1.0
START_TIMEOUT = 60.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def process_count(config: Config) -> int:
    # Two per CPU: a process's interpreter does one thing at a time, and while its sessions
    # wait on a thread hop or an fsync another process can use the core (bench/README.md).
    return config.processes or 2 * (os.cpu_count() or 1)


def raise_open_files_limit() -> None:
    """Raise the soft limit on open files to the hard one: every connection is a descriptor,
    and the common default of 1,024 runs out long before memory does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def notify_systemd(message: str) -> None:
    """sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET."""
    import socket

    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


@dataclass
class Child:
    process: int  # its row in the shared tables
    pid: int
    reports: int  # read end of its report pipe
    started: float
    ready: bool = False
    buffer: bytes = b""


@dataclass
class _Pending:
    """Signals noticed by the handlers, handled by the supervisor's loop."""

    stop: bool = False
    reload: bool = False
    children: bool = False


class Supervisor:
    def __init__(self, config: Config, services: list[Service], count: int) -> None:
        self.config = config
        self.services = services
        self.count = count
        self.shared = SharedState(count)
        self.children: dict[int, Child] = {}  # by pid
        self.restart_at: dict[int, float] = {}  # process row -> when to fork it again
        self.pending = _Pending()
        self.reloads_waiting = 0
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # -- signals ---------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.pending.stop = True
            elif signum == signal.SIGHUP:
                self.pending.reload = True
            else:
                self.pending.children = True

        for signum in _SIGNALS:
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._wake_w)

    # -- workers ---------------------------------------------------------------------------

    def _fork(self, process: int) -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            worker.run(self.config, self.services, self.shared, process, write_end)
        os.close(write_end)
        os.set_blocking(read_end, False)
        self.children[pid] = Child(process, pid, read_end, time.monotonic())

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            self._read_reports(child)
            os.close(child.reports)
            self.shared.forget(child.process)
            metrics.process_exited(pid)
            if self.stopping:
                continue
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"status {os.waitstatus_to_exitcode(status)}")
            log.error("worker process %d ended unexpectedly (%s); starting another", pid, how)
            quick = time.monotonic() - child.started < QUICK_DEATH
            self.restart_at[child.process] = time.monotonic() + (RESTART_DELAY if quick else 0)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for process, when in list(self.restart_at.items()):
            if when <= now:
                del self.restart_at[process]
                self._fork(process)

    def _read_reports(self, child: Child) -> list[str]:
        try:
            while data := os.read(child.reports, 4096):
                child.buffer += data
        except BlockingIOError:
            pass
        except OSError:
            return []
        *lines, child.buffer = child.buffer.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def _handle_reports(self, child: Child) -> str | None:
        """Act on what a worker reported; the message of an `error` report."""
        problem = None
        for line in self._read_reports(child):
            word, _, rest = line.partition(" ")
            if word == "ready":
                child.ready = True
            elif word == "reloaded" and self.reloads_waiting:
                self.reloads_waiting -= 1
                if not self.reloads_waiting:
                    log.info("configuration reloaded from %s",
                             self.config.source or "embedded defaults")
            elif word == "error":
                problem = rest
        return problem

    def _signal_children(self, signum: int) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _wait(self, timeout: float) -> None:
        """Sleep until a signal, a worker's report or the timeout."""
        readable = [self._wake_r, *(c.reports for c in self.children.values())]
        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select(readable, [], [], max(0.0, timeout))
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)
        self._reap()
        for child in list(self.children.values()):
            problem = self._handle_reports(child)
            if problem:
                log.error("worker process %d: %s", child.pid, problem)

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Fork every worker and wait until each has said it is ready; a worker that cannot
        start stops the whole server with its reason."""
        self._install_handlers()
        for process in range(self.count):
            self._fork(process)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(c.ready for c in self.children.values()) or len(
                self.children) < self.count:
            for child in list(self.children.values()):
                problem = self._handle_reports(child)
                if problem:
                    self.stop()
                    raise ServeError(problem)
            if self.restart_at or time.monotonic() > deadline or self.pending.stop:
                self.stop()
                raise ServeError("the worker processes did not start; see the log above")
            self._wait(0.2)

    def run(self) -> None:
        labels = [label for service in self.services for label in service.labels]
        log.info("lmtpd ready: %s processes=%d", " ".join(labels), self.count)
        notify_systemd("READY=1")
        while not self.pending.stop:
            if self.pending.reload:
                self.pending.reload = False
                self._reload()
            self._restart_due()
            self._wait(min([0.5, *(max(0.0, t - time.monotonic())
                                   for t in self.restart_at.values())]))
        notify_systemd("STOPPING=1")
        self.stop()
        log.info("lmtpd stopped")

    def _reload(self) -> None:
        try:
            new = config_module.load_for_reload(self.config.source)
        except ConfigError as error:
            log.error("reload failed, keeping the running configuration: %s", error)
            return
        if new.store.root != self.config.store.root:
            log.warning("store.root changed: restart lmtpd for that to take effect")
            new.store.root = self.config.store.root
        _warn_about_lost_domains(new)
        self.config = new
        self.reloads_waiting = len(self.children)
        self._signal_children(signal.SIGHUP)

    def stop(self) -> None:
        self.stopping = True
        self.restart_at.clear()
        self._signal_children(signal.SIGTERM)
        deadline = time.monotonic() + worker.SHUTDOWN_GRACE + 5
        while self.children:
            if time.monotonic() > deadline:
                log.warning("shutdown: killing worker processes %s", list(self.children))
                self._signal_children(signal.SIGKILL)
                deadline += 5
            self._wait(0.1)
        for service in self.services:
            service.cleanup()


def _warn_about_lost_domains(config: Config) -> None:
    """A domain that has mailboxes and is no longer local makes every one of them refuse
    mail with 550: worth a warning at the moment it happens."""
    try:
        index = Index(config.store.index_path)
    except Exception as error:
        log.debug("reload: cannot read the index to compare domains: %s", error)
        return
    try:
        lost = sorted(set(index.mailbox_domains()) - set(config.domains.local))
    finally:
        index.close()
    if lost:
        log.warning("reload: domains with mailboxes are no longer in domains.local: %s; "
                    "their mail is now refused with 550 5.1.2", ", ".join(lost))


def build_services() -> list[Service]:
    return [LmtpService(), Pop3Service(), ManageSieveService(), MetricsService()]


def serve(config: Config) -> None:
    raise_open_files_limit()
    warning = store_root_warning(config.store.root)
    if warning:
        log.warning("%s", warning)
    services = build_services()
    try:
        for service in services:
            service.bind(config)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ServeError(f"cannot listen: {error}") from None
        raise
    if not any(s.sockets for s in services if s.name != "metrics"):
        raise ServeError("nothing to serve: lmtp.socket, lmtp.listen and pop3 are all off")
    _prepare_metrics(config)
    # Made while still root: shared memory, and every module the workers will need (the
    # service user may not be able to read the interpreter's library).
    supervisor = Supervisor(config, services, process_count(config))
    try:
        drop_privileges(config)
    except PrivilegeError as error:
        raise ServeError(str(error)) from None
    try:
        supervisor.start()
    except BaseException:
        for service in services:
            service.cleanup()
        raise
    supervisor.run()


def _prepare_metrics(config: Config) -> None:
    if config.metrics.listen:
        # The values of every worker live in files here, cleared at every start.
        shared = Path(config.store.root) / "metrics"
        shared.mkdir(parents=True, exist_ok=True, mode=0o700)
        ids = service_ids(config)
        if ids is not None:
            os.chown(shared, *ids)
        metrics.use_shared_directory(str(shared))
    metrics.prepare()
