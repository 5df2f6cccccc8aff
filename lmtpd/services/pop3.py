"""The POP3 service: plain (with STLS) and implicit-TLS listeners in front of lmtpd.pop3."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from lmtpd.accept import BalancedListener, accept_balanced
from lmtpd.config import Config, tcp_listener
from lmtpd.errors import ServeError
from lmtpd.pop3.server import READ_SIZE, Pop3Server, make_tls_context
from lmtpd.services import BoundSocket, Runtime, Service


class Pop3Service(Service):
    name = "pop3"

    def __init__(self) -> None:
        super().__init__()
        self.server: Pop3Server | None = None
        self.listeners: list[BalancedListener] = []

    def bind(self, config: Config) -> None:
        pop3 = config.pop3
        if pop3.tls_enabled:
            for path in (pop3.tls_cert, pop3.tls_key):
                if not Path(path).is_file():
                    raise ServeError(f"pop3: cannot read {path} (pop3.tls_cert / pop3.tls_key)")
            try:
                make_tls_context(pop3.tls_cert, pop3.tls_key)
            except (OSError, ssl.SSLError) as error:
                raise ServeError(
                    f"pop3: cannot load the TLS certificate and key: {error}") from None
        for listen in pop3.listen:
            sock = tcp_listener(listen)
            self.sockets.append(BoundSocket(sock, tcp_label("pop3", sock)))
        for listen in pop3.tls_listen:
            sock = tcp_listener(listen)
            self.sockets.append(BoundSocket(sock, tcp_label("pop3s", sock), implicit_tls=True))

    async def start(self, runtime: Runtime) -> None:
        server = self.server = Pop3Server(runtime.workers, runtime.shared.pop3,
                                          runtime.shared.logins)
        for bound in self.sockets:

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             implicit_tls: bool = bound.implicit_tls) -> None:
                await server.accept(reader, writer, implicit_tls=implicit_tls)

            def streams(handle: Callable[..., Awaitable[None]] = handle
                        ) -> asyncio.BaseProtocol:
                # What asyncio.start_server makes for each connection.
                reader = asyncio.StreamReader(limit=READ_SIZE * 4)
                return asyncio.StreamReaderProtocol(reader, handle)

            self.listeners.append(accept_balanced(bound.sock, streams, runtime.shared.board))

    def stop_accepting(self) -> None:
        for listener in self.listeners:
            listener.close()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


def tcp_label(scheme: str, sock: socket.socket) -> str:
    """How the ready line shows a TCP listener: `pop3=127.0.0.1:110`."""
    host, port = sock.getsockname()[:2]
    return f"{scheme}=[{host}]:{port}" if ":" in host else f"{scheme}={host}:{port}"
