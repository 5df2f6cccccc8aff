"""The base of the services Postfix asks before it accepts mail (socketmap, policy): one
listener from a `[postfix]` setting ("unix:/path" or "host:port"), and one coroutine per
connection that reads requests and answers them in order. Postfix keeps these connections
open and sends request after request, so a connection costs nothing between requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from lmtpd.accept import accept_balanced
from lmtpd.config import Config, tcp_listener
from lmtpd.postfix.lookups import PostfixLookups
from lmtpd.services import BoundSocket, Runtime, Service
from lmtpd.services.lmtp import unix_listener

log = logging.getLogger("lmtpd.postfix")
# Postfix closes an idle lookup connection itself (socketmap after 10 s, policy after
# smtpd_policy_service_max_idle, 300 s); this only reclaims connections left dangling.
IDLE_TIMEOUT = 600.0
READ_SIZE = 65536


class LookupService(Service):
    """Subclasses set `name` (the key under [postfix]) and write `converse`."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: set[asyncio.StreamWriter] = set()
        self._lookups: PostfixLookups | None = None

    @property
    def lookups(self) -> PostfixLookups:
        assert self._lookups is not None, "start() first"
        return self._lookups

    def bind(self, config: Config) -> None:
        endpoint = getattr(config.postfix, self.name)
        if not endpoint:
            return
        if endpoint.startswith("unix:"):
            path = Path(endpoint[len("unix:"):])
            sock = unix_listener(config, path, config.lmtp.socket_mode,
                                 setting=f"postfix.{self.name}")
            self.socket_path = path
            self.sockets.append(BoundSocket(sock, f"{self.name}=unix:{path.resolve()}"))
        else:
            self.sockets.append(BoundSocket(tcp_listener(endpoint),
                                            f"{self.name}=inet:{endpoint}"))

    async def start(self, runtime: Runtime) -> None:
        self._lookups = PostfixLookups(runtime.workers)
        for bound in self.sockets:
            self.listeners.append(accept_balanced(bound.sock, self._protocol,
                                                  runtime.shared.board))

    def _protocol(self) -> asyncio.BaseProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=READ_SIZE),
                                            self._serve)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await self.converse(reader, writer)
        except (OSError, TimeoutError):
            pass  # the client went away or fell silent: nothing is owed to it
        finally:
            self.writers.discard(writer)
            writer.close()

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                       ) -> None:
        raise NotImplementedError

    @staticmethod
    async def receive(reader: asyncio.StreamReader) -> bytes:
        """The next bytes from the client; b"" when it closed the connection."""
        async with asyncio.timeout(IDLE_TIMEOUT):
            return await reader.read(READ_SIZE)

    async def close(self) -> None:
        for writer in list(self.writers):
            with contextlib.suppress(Exception):
                writer.close()
