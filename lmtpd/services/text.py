"""What the services of the line protocols users talk to (POP3, ManageSieve) share: the
certificate checked before serving, TCP listeners, and a server per worker that accepts on
them."""

from __future__ import annotations

import asyncio
import socket
import ssl
from functools import partial
from pathlib import Path

from lmtpd.accept import accept_balanced
from lmtpd.config import tcp_listener
from lmtpd.errors import ServeError
from lmtpd.services import BoundSocket, Runtime, Service
from lmtpd.textsession import TextServer
from lmtpd.tls import make_tls_context


def tcp_label(scheme: str, sock: socket.socket) -> str:
    """How the ready line shows a TCP listener: `pop3=127.0.0.1:110`."""
    host, port = sock.getsockname()[:2]
    return f"{scheme}=[{host}]:{port}" if ":" in host else f"{scheme}={host}:{port}"


def check_certificate(section: str, cert: str, key: str) -> None:
    """Refuse to start (ServeError naming the keys) with a certificate that cannot be used."""
    for path in (cert, key):
        if not Path(path).is_file():
            raise ServeError(f"{section}: cannot read {path} ({section}.tls_cert / "
                             f"{section}.tls_key)")
    try:
        make_tls_context(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ServeError(f"{section}: cannot load the TLS certificate and key: {error}"
                         ) from None


class TextService(Service):
    """Subclasses bind their sockets and make their server; `read_size` bounds what one
    read takes."""

    read_size = 4096

    def __init__(self) -> None:
        super().__init__()
        self.server: TextServer | None = None

    def listen(self, scheme: str, listen: str, *, implicit_tls: bool = False) -> None:
        sock = tcp_listener(listen)
        self.sockets.append(BoundSocket(sock, tcp_label(scheme, sock), implicit_tls))

    def make_server(self, runtime: Runtime) -> TextServer:
        raise NotImplementedError

    async def start(self, runtime: Runtime) -> None:
        if not self.sockets:
            return
        server = self.server = self.make_server(runtime)
        for bound in self.sockets:
            handle = partial(server.accept, implicit_tls=bound.implicit_tls)

            def streams(handle: partial[object] = handle) -> asyncio.BaseProtocol:
                # What asyncio.start_server makes for each connection.
                reader = asyncio.StreamReader(limit=self.read_size * 4)
                return asyncio.StreamReaderProtocol(reader, handle)

            self.listeners.append(accept_balanced(bound.sock, streams, runtime.shared.board))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
