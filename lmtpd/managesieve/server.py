"""ManageSieve connections: sockets, STARTTLS, connection limits and logins around the session
state machine of lmtpd.managesieve.protocol; script operations go to lmtpd.managesieve.scriptbox.

Blocking work never runs on the event loop: the password check, the index and the compiler
run in the worker pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import weakref
from typing import Any

from lmtpd import metrics
from lmtpd.config import Config, ManageSieveConfig
from lmtpd.logins import Attempt, Authenticator, Refusal
from lmtpd.managesieve import protocol
from lmtpd.managesieve.protocol import Capabilities, LoginFailure
from lmtpd.managesieve.scriptbox import ScriptBox
from lmtpd.pop3.login_cache import LoginCache
from lmtpd.pop3.server import TlsContexts
from lmtpd.pop3.throttle import IPAddress, normalize_ip, plaintext_auth_allowed
from lmtpd.scripts import notify_capability, sieve_capability
from lmtpd.shared import ConnectionCounts
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.managesieve")

READ_SIZE = 16384
HANDSHAKE_TIMEOUT = 30.0
CLOSE_GRACE = 5.0
# Command lines without their literals; RFC 5804 names no limit, this is room for any real
# command (a script travels as a literal, bounded by sieve.max_script_size).
MAX_LINE = 8192

_FAILURES = {Refusal.INVALID: LoginFailure.INVALID, Refusal.LOCKED: LoginFailure.LOCKED,
             Refusal.TEMPORARY: LoginFailure.TEMPORARY}


class _Disconnect(Exception):
    """The session must end now (the client vanished or stopped reading)."""


class ManageSieveServer:
    """What the connections of one process share: limits, logins, TLS."""

    def __init__(self, workers: Workers, limits: ConnectionCounts | None = None,
                 logins: LoginCache | None = None) -> None:
        self.workers = workers
        self.limits = limits if limits is not None else ConnectionCounts(1)
        self.auth = Authenticator(workers, logins if logins is not None else LoginCache())
        self.tls = TlsContexts("managesieve")
        self.tasks: set[asyncio.Task[Any]] = set()
        self.sessions: weakref.WeakSet[Session] = weakref.WeakSet()

    @property
    def config(self) -> Config:
        return self.workers.store.config  # read at each use: a reload replaces it

    def capabilities(self) -> Capabilities:
        return Capabilities(sieve=sieve_capability(), notify=notify_capability(),
                            max_redirects=self.config.sieve.max_redirects)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        section = self.config.managesieve
        peer = writer.get_extra_info("peername")
        address = normalize_ip(peer[0] if isinstance(peer, tuple) else None)
        ip = str(address) if address else "unknown"
        if not self.limits.acquire(ip, section.max_connections,
                                   section.max_connections_per_ip):
            log.warning("managesieve: connection from %s refused: too many connections", ip)
            writer.write(b'BYE (TRYLATER) "Too many connections, try again later."\r\n')
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        session = Session(self, reader, writer, address, ip)
        self.sessions.add(session)
        try:
            await session.run()
        except (_Disconnect, OSError, TimeoutError):
            pass  # the client went away or broke TLS: nothing to report
        except asyncio.CancelledError:
            session.say_goodbye()
        except Exception:
            log.exception("managesieve: session with %s failed", ip)
        finally:
            session.logout()
            self.tasks.discard(task)
            self.limits.release(ip)
            writer.close()

    async def close(self) -> None:
        """Server stop: every command in progress is one index transaction, so cancelling
        a session loses nothing half-done."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_GRACE)


class Session:
    """One connection: drives a protocol.Connection and does the I/O it asks for."""

    def __init__(self, server: ManageSieveServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, address: IPAddress | None, ip: str) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.address = address
        self.ip = ip
        self.conn: protocol.Connection | None = None
        self.scripts: ScriptBox | None = None

    @property
    def section(self) -> ManageSieveConfig:
        return self.server.config.managesieve

    async def run(self) -> None:
        context = self.server.tls.get(self.section)
        conn = self.conn = protocol.Connection(
            self.server.capabilities(), tls_available=context is not None,
            plaintext_allowed=self._plaintext_allowed(False),
            max_script_size=self.server.config.sieve.max_script_size, max_line=MAX_LINE)
        await self._write(conn.greeting())
        while True:
            event = conn.next_event()
            if isinstance(event, protocol.NeedData):
                data = await self._read()
                if data is None:
                    await self._write(conn.timed_out().data, quick=True)
                    return
                if not data:
                    return
                conn.receive_data(data)
            elif isinstance(event, protocol.Send):
                await self._write(event.data)
                if event.close:
                    return
            elif isinstance(event, protocol.Authenticate):
                answer = await self._login(conn, event)
                await self._write(answer.data)
                if answer.close:
                    return
            elif isinstance(event, protocol.StartTls):
                await self._start_tls(conn, event)
            elif isinstance(event, protocol.LoggedOut):
                self.logout()
                await self._write(event.reply)
            elif isinstance(event, protocol.Perform):
                assert self.scripts is not None
                result = await self.scripts.perform(event.operation)
                await self._write(conn.completed(result).data)

    def logout(self) -> None:
        """Forget the mailbox (UNAUTHENTICATE, LOGOUT or a dropped connection)."""
        scripts, self.scripts = self.scripts, None
        if scripts is not None:
            log.info("managesieve: logout user=%s ip=%s", scripts.mailbox.address, self.ip)

    def say_goodbye(self) -> None:
        """Best effort on server stop; never waits for a slow client."""
        if self.conn is not None and not self.writer.is_closing():
            with contextlib.suppress(Exception):
                self.writer.write(self.conn.shutting_down().data)

    def _plaintext_allowed(self, tls_active: bool) -> bool:
        config = self.server.config
        return plaintext_auth_allowed(
            self.ip, tls_active=tls_active,
            allow_plaintext_auth=config.managesieve.allow_plaintext_auth,
            trusted_networks=config.pop3.trusted_networks)

    async def _read(self) -> bytes | None:
        """Some bytes, b"" at end of stream, None after `timeout` seconds of silence."""
        try:
            async with asyncio.timeout(self.section.timeout):
                return await self.reader.read(READ_SIZE)
        except TimeoutError:
            return None

    async def _write(self, data: bytes, *, quick: bool = False) -> None:
        self.writer.write(data)
        transport = self.writer.transport
        if not transport.get_write_buffer_size() and not transport.is_closing():
            return
        try:
            async with asyncio.timeout(1.0 if quick else self.section.timeout):
                await self.writer.drain()
        except TimeoutError:
            raise _Disconnect from None

    async def _login(self, conn: protocol.Connection,
                     event: protocol.Authenticate) -> protocol.Send:
        outcome = await self.server.auth.login(Attempt(
            "managesieve", event.username, event.password, event.mechanism, self.address,
            self.ip))
        if isinstance(outcome, Refusal):
            return conn.login_failed(_FAILURES[outcome])
        self.scripts = ScriptBox(self.server.workers, outcome, self.ip)
        metrics.managesieve_login()
        log.info("managesieve: login user=%s ip=%s method=%s tls=%s", outcome.address,
                 self.ip, event.mechanism, "yes" if conn.tls_active else "no")
        return conn.login_succeeded(outcome.address)

    async def _start_tls(self, conn: protocol.Connection, event: protocol.StartTls) -> None:
        context = self.server.tls.get(self.section)
        await self._write(event.reply)
        # Bytes sent after STARTTLS and before the handshake may have been injected by a man
        # in the middle (the CVE-2011-0411 class): drop them, as POP3's STLS does.
        buffered = getattr(self.reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        try:
            assert context is not None
            await self.writer.start_tls(
                context, ssl_handshake_timeout=min(float(self.section.timeout),
                                                   HANDSHAKE_TIMEOUT))
        except (ssl.SSLError, OSError, TimeoutError) as error:
            log.info("managesieve: TLS handshake with %s failed: %s", self.ip, error)
            raise _Disconnect from None
        await self._write(conn.tls_started(plaintext_allowed=self._plaintext_allowed(True)).data)
