"""The ManageSieve service: its TCP listeners in front of lmtpd.managesieve."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from lmtpd.accept import BalancedListener, accept_balanced
from lmtpd.config import Config, tcp_listener
from lmtpd.errors import ServeError
from lmtpd.managesieve.server import READ_SIZE, ManageSieveServer
from lmtpd.pop3.server import make_tls_context
from lmtpd.services import BoundSocket, Runtime, Service
from lmtpd.services.pop3 import tcp_label


class ManageSieveService(Service):
    name = "managesieve"

    def __init__(self) -> None:
        super().__init__()
        self.server: ManageSieveServer | None = None
        self.listeners: list[BalancedListener] = []

    def bind(self, config: Config) -> None:
        section = config.managesieve
        if section.listen and section.tls_enabled:
            for path in (section.tls_cert, section.tls_key):
                if not Path(path).is_file():
                    raise ServeError(f"managesieve: cannot read {path} "
                                     f"(managesieve.tls_cert / managesieve.tls_key)")
            try:
                make_tls_context(section.tls_cert, section.tls_key)
            except (OSError, ssl.SSLError) as error:
                raise ServeError(f"managesieve: cannot load the TLS certificate and key: "
                                 f"{error}") from None
        for listen in section.listen:
            sock = tcp_listener(listen)
            self.sockets.append(BoundSocket(sock, tcp_label("managesieve", sock)))

    async def start(self, runtime: Runtime) -> None:
        if not self.sockets:
            return
        server = self.server = ManageSieveServer(runtime.workers, runtime.shared.managesieve,
                                                 runtime.shared.logins)

        def streams() -> asyncio.BaseProtocol:
            reader = asyncio.StreamReader(limit=READ_SIZE * 4)
            return asyncio.StreamReaderProtocol(reader, server.accept)

        for bound in self.sockets:
            self.listeners.append(accept_balanced(bound.sock, streams, runtime.shared.board))

    def stop_accepting(self) -> None:
        for listener in self.listeners:
            listener.close()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
