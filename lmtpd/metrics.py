"""Prometheus metrics: deliveries by outcome and status, delivery latency, POP3 sessions and
failed logins. Served only when `[metrics] listen` is set; counting is cheap either way."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from lmtpd.config import Config, parse_listen

log = logging.getLogger("lmtpd.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

DELIVERIES = Counter(
    "lmtpd_deliveries", "Recipient outcomes of LMTP transactions.",
    ["outcome", "status"], registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "lmtpd_delivery_seconds", "Time from the final dot to a recipient's reply.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
POP3_SESSIONS = Counter("lmtpd_pop3_sessions", "POP3 logins that succeeded.",
                        registry=REGISTRY)
POP3_ACTIVE = Gauge("lmtpd_pop3_sessions_active", "POP3 sessions logged in now.",
                    registry=REGISTRY)
POP3_LOGIN_FAILURES = Counter("lmtpd_pop3_login_failures", "POP3 logins refused.",
                              ["reason"], registry=REGISTRY)


def delivery(outcome: str, status: str, seconds: float) -> None:
    DELIVERIES.labels(outcome=outcome, status=status).inc()
    DELIVERY_SECONDS.observe(seconds)


def refused_at_rcpt(status: str) -> None:
    DELIVERIES.labels(outcome="rejected", status=status).inc()


def start(config: Config) -> str | None:
    """Serve /metrics on `[metrics] listen`; the endpoint name, or None when off."""
    if not config.metrics.listen:
        return None
    host, port = parse_listen(config.metrics.listen)
    start_http_server(port, addr=host or "0.0.0.0", registry=REGISTRY)
    return f"metrics=http://{config.metrics.listen}/metrics"
