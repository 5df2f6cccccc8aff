"""Prometheus metrics: deliveries by outcome and status, delivery latency, POP3 sessions,
ManageSieve logins and script changes, and failed logins. Served only when `[metrics] listen`
is set; counting is cheap either way.

The metric objects are made on first use, not at import: with several LMTP processes
(`processes`) the values must live in files shared by all of them, and prometheus_client
decides that when it is imported, so `serve` calls `use_shared_directory` first.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("lmtpd.metrics")
_SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class _Metrics:
    deliveries: Any
    delivery_seconds: Any
    pop3_sessions: Any
    pop3_active: Any
    pop3_login_failures: Any
    managesieve_logins: Any
    managesieve_changes: Any


_metrics: _Metrics | None = None


def use_shared_directory(path: str) -> None:
    """Keep the values in files under `path`, so one endpoint reports every process."""
    if _metrics is not None:
        raise RuntimeError("metrics were already in use in this process")
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.environ[_SHARED_DIR_ENV] = path


def prepare() -> None:
    """Import prometheus_client and make the metrics now: `serve` calls this before dropping
    privileges, after which the library's files may no longer be readable."""
    _get()
    from prometheus_client import exposition, multiprocess  # noqa: F401


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        from prometheus_client import Counter, Gauge, Histogram

        _metrics = _Metrics(
            deliveries=Counter("lmtpd_deliveries", "Recipient outcomes of LMTP transactions.",
                               ["outcome", "status"]),
            delivery_seconds=Histogram(
                "lmtpd_delivery_seconds", "Time from the final dot to a recipient's reply.",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)),
            pop3_sessions=Counter("lmtpd_pop3_sessions", "POP3 logins that succeeded."),
            pop3_active=Gauge("lmtpd_pop3_sessions_active", "POP3 sessions logged in now.",
                              multiprocess_mode="livesum"),
            pop3_login_failures=Counter("lmtpd_pop3_login_failures", "POP3 logins refused.",
                                        ["reason"]),
            managesieve_logins=Counter("lmtpd_managesieve_logins",
                                       "ManageSieve logins that succeeded."),
            managesieve_changes=Counter(
                "lmtpd_managesieve_changes",
                "ManageSieve commands that change scripts, by command and outcome.",
                ["command", "outcome"]),
        )
    return _metrics


def delivery(outcome: str, status: str, seconds: float) -> None:
    metrics = _get()
    metrics.deliveries.labels(outcome=outcome, status=status).inc()
    metrics.delivery_seconds.observe(seconds)


def refused_at_rcpt(status: str) -> None:
    _get().deliveries.labels(outcome="rejected", status=status).inc()


def pop3_login() -> None:
    metrics = _get()
    metrics.pop3_sessions.inc()


def pop3_session_opened() -> None:
    _get().pop3_active.inc()


def pop3_session_closed() -> None:
    _get().pop3_active.dec()


def managesieve_login() -> None:
    _get().managesieve_logins.inc()


def managesieve_change(command: str, outcome: str) -> None:
    """A PUTSCRIPT, SETACTIVE, DELETESCRIPT or RENAMESCRIPT and how it ended ("ok" or the
    response code of its refusal)."""
    _get().managesieve_changes.labels(command=command, outcome=outcome).inc()


_login_failures: dict[str, Any] = {}


def login_failed(service: str, reason: str) -> None:
    """A refused login on `service` ("pop3", "managesieve"): lmtpd_<service>_login_failures."""
    if service == "pop3":
        counter = _get().pop3_login_failures
    else:
        counter = _login_failures.get(service)
        if counter is None:
            from prometheus_client import Counter

            counter = _login_failures[service] = Counter(
                f"lmtpd_{service}_login_failures", f"{service} logins refused.", ["reason"])
    counter.labels(reason=reason).inc()


def process_exited(pid: int) -> None:
    """Drop a finished process's live gauges from the shared files."""
    if os.environ.get(_SHARED_DIR_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def exposition() -> bytes:
    """The metrics of every server process, in Prometheus's text format (blocking: reads the
    shared files)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    _get()
    registry = REGISTRY
    if os.environ.get(_SHARED_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/1.0 exchange: any GET gets the metrics."""
    try:
        async with asyncio.timeout(10):
            request = await reader.readuntil(b"\r\n\r\n")
        if not request.startswith(b"GET "):
            writer.write(b"HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        else:
            body = await asyncio.get_running_loop().run_in_executor(None, exposition)
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()
