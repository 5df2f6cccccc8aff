"""The I/O side of one connection of a line protocol users talk to (POP3, ManageSieve):
reading with a timeout of silence, writing that waits for a slow reader only while it reads,
STARTTLS, and the loop that carries out what the sans-I/O session state machine asks for
(lmtpd.textproto). Each protocol adds its login and its own events."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import ssl
import struct
import termios
import weakref
from typing import Any, Protocol

from lmtpd.config import Config
from lmtpd.login_cache import LoginCache
from lmtpd.logins import Authenticator
from lmtpd.shared import ConnectionCounts
from lmtpd.store.worker import Workers
from lmtpd.textproto import Authenticate, NeedData, Send, StartTls
from lmtpd.throttle import IPAddress, normalize_ip
from lmtpd.tls import TlsContexts

log = logging.getLogger("lmtpd")
HANDSHAKE_TIMEOUT = 30.0


class Disconnect(Exception):
    """The session must end now (the client vanished, stopped reading, or broke TLS)."""


class Connection(Protocol):
    """What every session state machine offers its server."""

    def greeting(self) -> bytes: ...

    def receive_data(self, data: bytes) -> None: ...

    def next_event(self) -> object: ...

    def timed_out(self) -> Send: ...

    def shutting_down(self) -> Send: ...


def _unsent_octets(transport: asyncio.BaseTransport) -> int:
    """What the client has not taken yet: the transport's buffer plus the socket's send
    queue. The kernel's queue can hold megabytes, and a slow reader empties it long before
    the transport's buffer moves, so the transport's buffer alone does not show progress."""
    assert isinstance(transport, asyncio.WriteTransport)
    queued = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            queued += struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                     b"\0\0\0\0"))[0]
    return queued


async def drain_while_read(writer: asyncio.StreamWriter, silence: float) -> None:
    """Wait until what was written has gone to the kernel. A client that stops reading would
    otherwise hold the session (and its mailbox lock) for ever once the socket buffers are
    full, so it is dropped (Disconnect) after `silence` seconds in which it took nothing; a
    client that keeps taking data is waited for, however long the whole transfer takes."""
    transport = writer.transport
    if not transport.get_write_buffer_size() and not transport.is_closing():
        return  # all of it is with the kernel already: nothing to wait for
    while True:
        unsent = _unsent_octets(transport)
        try:
            async with asyncio.timeout(silence):
                await writer.drain()
            return
        except TimeoutError:
            if transport.is_closing() or _unsent_octets(transport) >= unsent:
                raise Disconnect from None


class TextSession:
    """One connection. Subclasses say how long silence may last (`timeout`), whether a
    password may travel in the clear (`plaintext_allowed`), which TLS context STARTTLS uses,
    and carry out the login and their own events."""

    service = "text"  # the prefix of log lines
    read_size = 4096

    def __init__(self, server: TextServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, address: IPAddress | None, ip: str,
                 task: asyncio.Task[Any]) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.address = address
        self.ip = ip
        self.task = task
        self.conn: Connection | None = None
        # Set while the session carries out what must not be cut short by a server stop.
        self.finishing = False

    # -- what a protocol says -----------------------------------------------------------------

    async def run(self, **options: Any) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """The connection is over, however it ended: give back what the session holds."""

    @property
    def timeout(self) -> float:
        raise NotImplementedError

    def plaintext_allowed(self, tls_active: bool) -> bool:
        raise NotImplementedError

    def tls_context(self) -> ssl.SSLContext | None:
        raise NotImplementedError

    async def login(self, event: Authenticate) -> Send:
        raise NotImplementedError

    async def tls_started(self) -> None:
        """The handshake is done: tell the state machine (and the client, if it expects an
        answer)."""
        raise NotImplementedError

    def tls_failed(self) -> None:
        """The handshake failed; the connection ends."""

    async def handle(self, event: object) -> bool:
        """An event of the protocol's own; True when the session is over."""
        raise NotImplementedError(f"unexpected event {event!r}")

    # -- the loop -----------------------------------------------------------------------------

    async def serve(self, conn: Connection) -> None:
        self.conn = conn
        await self.send(conn.greeting())
        while True:
            event = conn.next_event()
            if isinstance(event, NeedData):
                data = await self._read()
                if data is None:
                    await self._write(conn.timed_out().data, quick=True)
                    return
                if not data:
                    return
                conn.receive_data(data)
            elif isinstance(event, Send):
                await self.send(event.data)
                if event.close:
                    return
            elif isinstance(event, Authenticate):
                answer = await self.login(event)
                await self.send(answer.data)
                if answer.close:  # too many errors
                    return
            elif isinstance(event, StartTls):
                await self._start_tls(event)
            elif await self.handle(event):
                return

    def say_goodbye(self) -> None:
        """Best effort on server stop; never waits for a slow client."""
        if self.conn is not None and not self.writer.is_closing():
            with contextlib.suppress(Exception):
                self.writer.write(self.conn.shutting_down().data)

    # -- I/O ------------------------------------------------------------------------------------

    async def _read(self) -> bytes | None:
        """Some bytes, b"" at end of stream, None after `timeout` seconds of silence."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self.reader.read(self.read_size)
        except TimeoutError:
            return None

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await drain_while_read(self.writer, self.timeout)

    async def send(self, data: bytes) -> None:
        await self._write(data)

    async def _write(self, data: bytes, *, quick: bool = False) -> None:
        self.writer.write(data)
        await drain_while_read(self.writer, 1.0 if quick else self.timeout)

    def handshake_timeout(self) -> float:
        return float(min(self.timeout, HANDSHAKE_TIMEOUT))

    async def _start_tls(self, event: StartTls) -> None:
        context = self.tls_context()
        await self.send(event.reply)
        # Anything the client sent after STARTTLS and before the handshake is plaintext that
        # an attacker may have injected (the CVE-2011-0411 class): drop it. StreamReader has
        # no public way to do that, hence the private buffer.
        buffered = getattr(self.reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        try:
            assert context is not None
            await self.writer.start_tls(context, ssl_handshake_timeout=self.handshake_timeout())
        except (ssl.SSLError, OSError, TimeoutError) as error:
            log.info("%s: TLS handshake with %s failed: %s", self.service, self.ip, error)
            self.tls_failed()
            raise Disconnect from None
        await self.tls_started()


class Limits(Protocol):
    """A configuration section with connection caps (POP3's, ManageSieve's)."""

    max_connections: int
    max_connections_per_ip: int


class TextServer:
    """What the connections of one protocol in one worker process share: the connection
    counts of the whole server, the login check, the TLS context, the sessions running.
    Subclasses say which configuration section holds their caps, how to refuse a connection
    over them, and make the session."""

    service = "text"
    session_class: type[TextSession]
    close_grace = 5.0

    def __init__(self, workers: Workers, limits: ConnectionCounts | None = None,
                 logins: LoginCache | None = None) -> None:
        self.workers = workers
        self.limits = limits if limits is not None else ConnectionCounts(1)
        self.auth = Authenticator(workers, logins if logins is not None else LoginCache())
        self.tls = TlsContexts(self.service)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.sessions: weakref.WeakSet[TextSession] = weakref.WeakSet()

    @property
    def config(self) -> Config:
        # Read at each use: a SIGHUP reload replaces the store's configuration.
        return self.workers.store.config

    def section(self) -> Limits:
        raise NotImplementedError

    def refuse(self, writer: asyncio.StreamWriter, **options: Any) -> None:
        """Say why a connection over the caps is closed."""

    def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                address: IPAddress | None, ip: str, task: asyncio.Task[Any]) -> TextSession:
        return self.session_class(self, reader, writer, address, ip, task)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     **options: Any) -> None:
        """Serve one connection to its end, counted against the caps while it lasts."""
        section = self.section()
        peer = writer.get_extra_info("peername")
        address = normalize_ip(peer[0] if isinstance(peer, tuple) else None)
        ip = str(address) if address else "unknown"
        if not self.limits.acquire(ip, section.max_connections,
                                   section.max_connections_per_ip):
            log.warning("%s: connection from %s refused: too many connections",
                        self.service, ip)
            self.refuse(writer, **options)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        session = self.session(reader, writer, address, ip, task)
        self.sessions.add(session)
        try:
            await session.run(**options)
        except (Disconnect, OSError, TimeoutError):
            pass  # the client went away, broke TLS or stopped reading: nothing to report
        except asyncio.CancelledError:
            session.say_goodbye()
        except Exception:
            log.exception("%s: session with %s failed", self.service, ip)
        finally:
            session.end()
            self.tasks.discard(task)
            self.limits.release(ip)
            writer.close()

    async def close(self) -> None:
        """Server stop: end every session that may be cut short (`TextSession.finishing`
        says which may not), and wait a moment for them."""
        tasks = list(self.tasks)
        finishing = {session.task for session in self.sessions if session.finishing}
        for task in tasks:
            if task not in finishing:
                task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.close_grace)
