"""POP3 listeners: sockets, TLS (STLS and implicit), limits, throttling, and the store calls
behind the session state machine of lmtpd.pop3.protocol.

Blocking work never runs on the event loop: the password check, the maildrop snapshot, the
seen flag and the deletes go to the index thread, message file reads to the file pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import ssl
import struct
import termios
import weakref
from typing import Any, Protocol

from lmtpd import metrics
from lmtpd.config import Config, Pop3Config
from lmtpd.logins import Attempt, Authenticator, Refusal
from lmtpd.pop3 import protocol
from lmtpd.pop3.login_cache import LoginCache
from lmtpd.pop3.protocol import LoginFailure
from lmtpd.pop3.retrieval import Disconnect, Entry, Retrieval
from lmtpd.pop3.throttle import IPAddress, normalize_ip, plaintext_auth_allowed
from lmtpd.shared import ConnectionCounts
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow
from lmtpd.store.reconcile import Reconciler
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.pop3")

READ_SIZE = 4096
HANDSHAKE_TIMEOUT = 30.0
CLOSE_GRACE = 5.0

_FAILURES = {Refusal.INVALID: LoginFailure.INVALID, Refusal.LOCKED: LoginFailure.LOCKED,
             Refusal.TEMPORARY: LoginFailure.TEMPORARY}


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


def make_tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(cert, key)
    return context


class TlsFiles(Protocol):
    """A configuration section with a certificate (POP3's, ManageSieve's)."""

    tls_cert: str
    tls_key: str

    @property
    def tls_enabled(self) -> bool: ...


class TlsContexts:
    """The server's TLS context, rebuilt when the configured files or their contents change
    (a renewed certificate is picked up by the next connection, no restart needed)."""

    def __init__(self, service: str = "pop3") -> None:
        self.service = service
        self._key: tuple[object, ...] | None = None
        self._context: ssl.SSLContext | None = None

    def get(self, section: TlsFiles) -> ssl.SSLContext | None:
        if not section.tls_enabled:
            return None
        try:
            key = (section.tls_cert, section.tls_key, os.stat(section.tls_cert).st_mtime_ns,
                   os.stat(section.tls_key).st_mtime_ns)
            if key != self._key:
                self._context = make_tls_context(section.tls_cert, section.tls_key)
                self._key = key
        except (OSError, ssl.SSLError) as error:
            if self._context is None:
                raise
            log.error("%s: cannot load %s / %s, keeping the previous certificate: %s",
                      self.service, section.tls_cert, section.tls_key, error)
        return self._context


class Pop3Server:
    """Shared state of all POP3 connections: limits, mailbox locks, login throttle."""

    def __init__(self, workers: Workers, limits: ConnectionCounts | None = None,
                 logins: LoginCache | None = None) -> None:
        self.workers = workers
        self.limits = limits if limits is not None else ConnectionCounts(1)
        self.auth = Authenticator(workers, logins if logins is not None else LoginCache())
        self.reconciler = Reconciler(workers)
        self.tls = TlsContexts()
        self.locks: dict[int, Session] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.sessions: weakref.WeakSet[Session] = weakref.WeakSet()

    @property
    def config(self) -> Config:
        # Read at each use: a SIGHUP reload replaces the store's configuration.
        return self.workers.store.config

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                     implicit_tls: bool) -> None:
        pop3 = self.config.pop3
        peer = writer.get_extra_info("peername")
        address = normalize_ip(peer[0] if isinstance(peer, tuple) else None)
        ip = str(address) if address else "unknown"
        if not self.limits.acquire(ip, pop3.max_connections, pop3.max_connections_per_ip):
            log.warning("pop3: connection from %s refused: too many connections", ip)
            if not implicit_tls:
                writer.write(protocol.err("[SYS/TEMP] Too many connections, try again later."))
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        session = Session(self, reader, writer, address, ip, task)
        self.sessions.add(session)
        try:
            await session.run(implicit_tls)
        except (Disconnect, OSError, TimeoutError):
            pass  # the client went away, broke TLS or stopped reading: nothing to report
        except asyncio.CancelledError:
            session.say_goodbye()
        except Exception:
            log.exception("pop3: session with %s failed", ip)
        finally:
            session.release()
            self.tasks.discard(task)
            self.limits.release(ip)
            writer.close()

    async def close(self) -> None:
        """Server stop: end every session without deleting anything (a DELE only takes
        effect at QUIT)."""
        tasks = list(self.tasks)
        updating = {session.task for session in self.sessions if session.updating}
        for task in tasks:
            # A session already deleting after QUIT finishes and answers its client.
            if task not in updating:
                task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_GRACE)


class Session:
    """One connection: drives a protocol.Connection and does the I/O it asks for."""

    def __init__(self, server: Pop3Server, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, address: IPAddress | None, ip: str,
                 task: asyncio.Task[Any]) -> None:
        self.server = server
        self.task = task
        self.updating = False
        self.workers = server.workers
        self.store = server.workers.store
        self.reader = reader
        self.writer = writer
        self.address = address
        self.ip = ip
        self.conn: protocol.Connection | None = None
        self.mailbox: MailboxRow | None = None
        self.rows: list[Entry] = []
        self.retrieval: Retrieval | None = None
        self._lock_fd: int | None = None
        self.deleted = 0

    @property
    def pop3(self) -> Pop3Config:
        return self.server.config.pop3

    # -- connection life --------------------------------------------------------------------

    async def run(self, implicit_tls: bool) -> None:
        context = self.server.tls.get(self.pop3)
        if implicit_tls:
            if context is None:
                log.error("pop3: a POP3S connection but no certificate (pop3.tls_cert and "
                          "pop3.tls_key were removed by a reload?)")
                return
            await self.writer.start_tls(context, ssl_handshake_timeout=self._handshake_timeout())
        conn = self.conn = protocol.Connection(
            hostname=self.server.config.hostname,
            tls_available=context is not None,
            tls_active=implicit_tls,
            plaintext_allowed=self._plaintext_allowed(implicit_tls),
            max_errors=self.pop3.max_errors,
        )
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
                if answer.close:  # too many errors
                    return
            elif isinstance(event, protocol.StartTls):
                await self._start_tls(conn, event)
            elif isinstance(event, protocol.Retrieve):
                assert self.retrieval is not None
                await self.retrieval.retrieve(conn, event)
            elif isinstance(event, protocol.Update):
                answer = await self._update(conn, event)
                # The mailbox is given back before the client hears that its session is
                # over, so it can log in again the moment it reads the answer.
                self.release()
                await self._write(answer.data)
                return

    def release(self) -> None:
        """Give back the mailbox lock, if this session holds it; safe to call twice."""
        mailbox, self.mailbox = self.mailbox, None
        if mailbox is None or self.server.locks.get(mailbox.id) is not self:
            return
        del self.server.locks[mailbox.id]
        if self._lock_fd is not None:
            maildir.unlock_mailbox(self._lock_fd)
            self._lock_fd = None
            metrics.pop3_session_closed()
            log.info("pop3: logout user=%s ip=%s retr=%d dele=%d", mailbox.address,
                     self.ip, self.retrieval.retrieved if self.retrieval else 0, self.deleted)

    def say_goodbye(self) -> None:
        """Best effort on server stop; never waits for a slow client."""
        if self.conn is not None and not self.writer.is_closing():
            with contextlib.suppress(Exception):
                self.writer.write(self.conn.shutting_down().data)

    def _handshake_timeout(self) -> float:
        return float(min(self.pop3.timeout, HANDSHAKE_TIMEOUT))

    def _plaintext_allowed(self, tls_active: bool) -> bool:
        pop3 = self.pop3
        return plaintext_auth_allowed(
            self.ip, tls_active=tls_active, allow_plaintext_auth=pop3.allow_plaintext_auth,
            trusted_networks=pop3.trusted_networks)

    async def _read(self) -> bytes | None:
        """Some bytes, b"" at end of stream, None after `timeout` seconds of silence."""
        try:
            async with asyncio.timeout(self.pop3.timeout):
                return await self.reader.read(READ_SIZE)
        except TimeoutError:
            return None

    # -- Output, for Retrieval ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await self._drain()

    async def send(self, data: bytes) -> None:
        await self._write(data)

    async def _write(self, data: bytes, *, quick: bool = False) -> None:
        self.writer.write(data)
        await self._drain(quick=quick)

    async def _drain(self, *, quick: bool = False) -> None:
        await drain_while_read(self.writer, 1.0 if quick else self.pop3.timeout)

    # -- commands that need the outside world ------------------------------------------------

    async def _login(self, conn: protocol.Connection,
                     event: protocol.Authenticate) -> protocol.Send:
        outcome = await self.server.auth.login(Attempt(
            "pop3", event.username, event.password, event.mechanism, self.address, self.ip))
        if isinstance(outcome, Refusal):
            return conn.login_failed(_FAILURES[outcome])
        mailbox = outcome
        failure = await self._lock(mailbox)
        if failure is not None:
            return conn.login_failed(failure)
        try:
            self.rows = await self._open_maildrop(mailbox)
            self.retrieval = Retrieval(self.workers, mailbox, self.rows, self)
        except Exception as error:
            log.error("pop3: user=%s: cannot open the mailbox: %s", mailbox.address, error)
            self.release()
            return conn.login_failed(LoginFailure.TEMPORARY)
        metrics.pop3_login()
        log.info("pop3: login user=%s ip=%s method=%s tls=%s messages=%d", mailbox.address,
                 self.ip, event.mechanism, "yes" if conn.tls_active else "no", len(self.rows))
        return conn.login_succeeded(
            [protocol.MessageInfo(row.uidl, row.crlf_size) for row in self.rows])

    async def _lock(self, mailbox: MailboxRow) -> LoginFailure | None:
        """Take the mailbox for this session, in this process and then in every process (a
        flock on a file in the Maildir). From the moment it is taken the lock belongs to the
        session, and release() gives it back however the session ends."""
        if mailbox.id in self.server.locks:
            log.info("pop3: login refused user=%s ip=%s reason=in-use", mailbox.address, self.ip)
            return LoginFailure.IN_USE
        # This process's lock first, before any await, so two logins cannot both get it.
        self.server.locks[mailbox.id] = self
        self.mailbox = mailbox
        try:
            self._lock_fd = await self.workers.io(self.store.lock_mailbox, mailbox)
        except OSError as error:
            log.error("pop3: user=%s: cannot lock the mailbox: %s", mailbox.address, error)
            self.release()
            return LoginFailure.TEMPORARY
        except BaseException:
            self.release()
            raise
        if self._lock_fd is None:
            self.release()
            log.info("pop3: login refused user=%s ip=%s reason=in-use", mailbox.address, self.ip)
            return LoginFailure.IN_USE
        metrics.pop3_session_opened()
        return None

    async def _open_maildrop(self, mailbox: MailboxRow) -> list[Entry]:
        """The INBOX as its files are now: the index's rows, with what a file comparison says
        is missing added first (lmtpd.store.reconcile). Ordered by the arrival time in the file
        name, which a reindex keeps, so message numbers stay the same too."""
        store = self.store
        rows = await self.workers.db(lambda: store.index.messages(mailbox.id, maildir.INBOX))
        rows = await self.server.reconciler.folder(mailbox, maildir.INBOX, rows)
        entries = [Entry.of(row) for row in rows]
        entries.sort(key=lambda row: (maildir.arrival_time(row.filename, row.received),
                                      row.uidl))
        return entries

    async def _start_tls(self, conn: protocol.Connection, event: protocol.StartTls) -> None:
        context = self.server.tls.get(self.pop3)
        await self._write(event.reply)
        # Anything the client sent after STLS and before the handshake is plaintext that an
        # attacker may have injected (CVE-2011-0411 class): drop it. StreamReader has no public
        # way to do that, hence the private buffer.
        buffered = getattr(self.reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        try:
            assert context is not None
            await self.writer.start_tls(context, ssl_handshake_timeout=self._handshake_timeout())
        except (ssl.SSLError, OSError, TimeoutError) as error:
            log.info("pop3: TLS handshake with %s failed: %s", self.ip, error)
            conn.tls_failed()
            raise Disconnect from None
        conn.tls_started(plaintext_allowed=self._plaintext_allowed(True))

    async def _update(self, conn: protocol.Connection, event: protocol.Update) -> protocol.Send:
        assert self.mailbox is not None
        wanted = [self.rows[n - 1] for n in event.numbers]
        if not wanted:
            return conn.update_finished(deleted=0, failed=0)
        self.updating = True
        try:
            # Shielded: once the deletes started they finish even if the task is cancelled.
            deleted, failed = await asyncio.shield(
                self.workers.db(self._delete, self.mailbox, wanted))
        except Exception as error:
            log.error("pop3: user=%s: deleting %d messages failed: %s", self.mailbox.address,
                      len(wanted), error)
            deleted, failed = 0, len(wanted)
        self.deleted = deleted
        log.info("pop3: user=%s deleted=%d failed=%d", self.mailbox.address, deleted, failed)
        return conn.update_finished(deleted=deleted, failed=failed)

    def _delete(self, mailbox: MailboxRow, wanted: list[Entry]) -> tuple[int, int]:
        """Delete the rows (index thread). They are looked up again by UIDL first: a reindex
        during the session may have renamed a file or renumbered its row."""
        current = {row.uidl: row for row in self.store.index.messages(mailbox.id, maildir.INBOX)}
        targets = [current[row.uidl] for row in wanted if row.uidl in current]
        failed = self.store.delete_messages(mailbox, targets)
        return len(targets) - len(failed), len(failed)
