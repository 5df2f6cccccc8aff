"""One worker process: serves every service on the sockets the supervisor bound, until
SIGTERM; reloads on SIGHUP; keeps the index tidy (memories pruned, lost rows found).

It reports to the supervisor over a pipe, one line per event: `ready`, `reloaded`, or
`error <message>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal

from lmtpd import config as config_module
from lmtpd.config import Config, ConfigError
from lmtpd.services import Runtime, Service
from lmtpd.shared import SharedState
from lmtpd.store.mailboxes import Store
from lmtpd.store.reconcile import Reconciler
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.server")
SHUTDOWN_GRACE = 30.0
# How often memories past their window are pruned (at most; a short window prunes sooner).
PRUNE_EVERY = 60.0
# How often the index file is checked for having been replaced (a restore from backup).
INDEX_CHECK_EVERY = 1.0
# How often the first worker compares every Maildir with the index and clears stale tmp/
# files (also once at start).
SWEEP_EVERY = 86400.0


def prune_interval(config: Config) -> float:
    windows = [w for w in (config.lmtp.duplicate_window, config.lmtp.trace_retention) if w]
    return max(1.0, min([PRUNE_EVERY, *(w / 2 for w in windows)]))


def run(config: Config, services: list[Service], shared: SharedState, process: int,
        report_fd: int) -> None:
    """The body of a forked worker process; never returns."""
    code = 0
    try:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        signal.set_wakeup_fd(-1)
        _die_with_parent()
        shared.enter(process)
        asyncio.run(Worker(config, services, shared, process, report_fd).run())
    except BaseException as error:
        log.exception("worker process %d failed", os.getpid())
        _report(report_fd, f"error {error}")
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _report(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (" ".join(line.split()) + "\n").encode("utf-8", "replace"))


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the kernel sends SIGTERM to this worker if the supervisor dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)
    if os.getppid() == 1:
        os._exit(0)


class Worker:
    def __init__(self, config: Config, services: list[Service], shared: SharedState,
                 process: int, report_fd: int) -> None:
        self.config = config
        self.services = services
        self.shared = shared
        self.process = process
        self.report_fd = report_fd
        self.workers = Workers(Store(config))
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        runtime = Runtime(self.config, self.workers, self.shared, self.process)
        for service in self.services:
            await service.start(runtime)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        self._spawn(self._maintain())
        if self.process == 0:
            self._spawn(self._sweep())
        _report(self.report_fd, "ready")
        await self._stop.wait()
        await self.shutdown()

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> None:
        """Build the new configuration off the event loop, then swap it in whole. An invalid
        file keeps the running configuration (the supervisor has said why already)."""
        source = self.config.source
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, config_module.load_for_reload, source)
        except ConfigError as error:
            log.debug("worker %d keeps its configuration: %s", os.getpid(), error)
            return
        new.store.root = self.config.store.root  # a new root needs a restart
        for service in self.services:
            await service.reconfigure(new)
        self.config = new
        self.workers.store.config = new
        _report(self.report_fd, "reloaded")

    async def _maintain(self) -> None:
        """Prune memories past their window; notice an index file replaced under us."""
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(INDEX_CHECK_EVERY)
            try:
                await self.workers.db(self.workers.store.reopen_if_replaced)
                if loop.time() >= next_prune:
                    next_prune = loop.time() + prune_interval(self.config)
                    await self.workers.db(self._prune)
            except Exception as error:
                log.warning("index upkeep failed: %s", error)

    def _prune(self) -> None:
        config = self.config
        removed = self.workers.store.index.prune_memories(
            trace_retention=config.lmtp.trace_retention, throttle_window=86400)
        if removed:
            log.debug("pruned %d memories past their window", removed)

    async def _sweep(self) -> None:
        while True:
            try:
                await Reconciler(self.workers).everything()
            except Exception as error:
                log.error("looking for message files without index rows failed: %s", error)
            await asyncio.sleep(SWEEP_EVERY)

    async def shutdown(self) -> None:
        """Stop accepting, let transactions in progress finish, then close everything."""
        for service in self.services:
            service.stop_accepting()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE
        while any(service.busy() for service in self.services):
            if loop.time() > deadline:
                log.warning("shutdown: giving up on transactions still in progress")
                break
            await asyncio.sleep(0.05)
        for service in self.services:
            await service.close()
        for task in list(self._tasks):
            task.cancel()
        await loop.run_in_executor(None, self.workers.close)
