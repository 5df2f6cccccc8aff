"""The Prometheus endpoint: bound by the supervisor, answered by the first worker process
(the values of every process live in shared files, so any one of them can answer)."""

from __future__ import annotations

import asyncio

from lmtpd import metrics
from lmtpd.config import Config, tcp_listener
from lmtpd.services import BoundSocket, Runtime, Service


class MetricsService(Service):
    name = "metrics"

    def __init__(self) -> None:
        super().__init__()
        self.server: asyncio.Server | None = None

    def bind(self, config: Config) -> None:
        if config.metrics.listen:
            sock = tcp_listener(config.metrics.listen)
            label = f"metrics=http://{config.metrics.listen}/metrics"
            self.sockets.append(BoundSocket(sock, label))

    async def start(self, runtime: Runtime) -> None:
        if self.sockets and runtime.process == 0:
            self.server = await asyncio.start_server(metrics.answer, sock=self.sockets[0].sock)

    def stop_accepting(self) -> None:
        if self.server is not None:
            self.server.close()
