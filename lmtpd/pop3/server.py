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
import socket
import ssl
import struct
import termios
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lmtpd import metrics
from lmtpd.accept import BalancedListener, LoadBoard, accept_balanced
from lmtpd.config import Config, Pop3Config, tcp_listener
from lmtpd.pop3 import protocol
from lmtpd.pop3.limits import ConnectionLimits
from lmtpd.pop3.login_cache import LoginCache
from lmtpd.pop3.protocol import LoginFailure
from lmtpd.pop3.throttle import (
    IndexRecords,
    IPAddress,
    LoginThrottle,
    is_trusted,
    normalize_ip,
    plaintext_auth_allowed,
)
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow, MessageRow
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.pop3")

READ_SIZE = 4096
# Messages are streamed in pieces of this size: big enough to keep thread hops few, small
# enough that a 50 MB message costs well under a megabyte of memory per session.
CHUNK_SIZE = 256 * 1024
HANDSHAKE_TIMEOUT = 30.0
CLOSE_GRACE = 5.0

Listeners = tuple[list[BalancedListener], list[str], Callable[[], Awaitable[None]]]


class Entry(NamedTuple):
    """One message of a session's snapshot: only what POP3 needs, so a maildrop of tens of
    thousands of messages stays small (the index row also carries subject, sender, ...)."""

    id: int
    uidl: str
    crlf_size: int
    size: int
    subdir: str
    filename: str
    received: float
    flags: str

    @classmethod
    def of(cls, row: MessageRow) -> Entry:
        return cls(row.id, row.uidl, row.crlf_size, row.size, row.subdir, row.filename,
                   row.received, row.flags)

    def row(self, mailbox_id: int) -> MessageRow:
        return MessageRow(self.id, mailbox_id, maildir.INBOX, self.subdir, self.filename,
                          self.uidl, self.size, self.crlf_size, self.received, "", "", "",
                          self.flags)


class _Disconnect(Exception):
    """The session must end now (the client vanished or a transfer broke)."""


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


def make_tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(cert, key)
    return context


class TlsContexts:
    """The server's TLS context, rebuilt when the configured files or their contents change
    (a renewed certificate is picked up by the next connection, no restart needed)."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._context: ssl.SSLContext | None = None

    def get(self, pop3: Pop3Config) -> ssl.SSLContext | None:
        if not pop3.tls_enabled:
            return None
        try:
            key = (pop3.tls_cert, pop3.tls_key, os.stat(pop3.tls_cert).st_mtime_ns,
                   os.stat(pop3.tls_key).st_mtime_ns)
            if key != self._key:
                self._context = make_tls_context(pop3.tls_cert, pop3.tls_key)
                self._key = key
        except (OSError, ssl.SSLError) as error:
            if self._context is None:
                raise
            log.error("pop3: cannot load %s / %s, keeping the previous certificate: %s",
                      pop3.tls_cert, pop3.tls_key, error)
        return self._context


def _printable(text: str, limit: int = 80) -> str:
    """A client-supplied string made safe for a log line."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _endpoint(scheme: str, server: BalancedListener) -> list[str]:
    names = []
    for sock in server.sockets:
        host, port = sock.getsockname()[:2]
        names.append(f"{scheme}=[{host}]:{port}" if ":" in host else f"{scheme}={host}:{port}")
    return names


class Pop3Server:
    """Shared state of all POP3 connections: limits, mailbox locks, login throttle."""

    def __init__(self, workers: Workers, limits: ConnectionLimits | None = None,
                 logins: LoginCache | None = None) -> None:
        self.workers = workers
        self.limits = limits if limits is not None else ConnectionLimits()
        self.login_cache = logins if logins is not None else LoginCache()
        self.throttle = LoginThrottle(store=IndexRecords(lambda: workers.store.index))
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
        except (_Disconnect, OSError, TimeoutError):
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


@dataclass
class _ReadAhead:
    """A message being read ahead: its chunks, and the first of them read (or being read) in
    the file pool, with the whole RETR reply already encoded there when the message fits in
    that chunk. Dropped unused, the generator closes its file when it is collected."""

    index: int
    chunks: Iterator[bytes]
    first: asyncio.Future[tuple[bytes | None, bytes | None]]


def _read_first(chunks: Iterator[bytes]) -> tuple[bytes | None, bytes | None]:
    """In the file pool: the first chunk, and if it is the whole message, the message as RETR
    sends it (CRLF, dot-stuffed, final dot), so the event loop only has to write it."""
    chunk = next(chunks, None)
    if chunk is None or len(chunk) >= CHUNK_SIZE:
        return chunk, None
    encoder = protocol.MessageEncoder()
    return chunk, encoder.feed(chunk) + encoder.finish()


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
        self.retrieved = 0
        self._lock_fd: int | None = None
        self.deleted = 0
        self._read_ahead: _ReadAhead | None = None

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
                await self._retrieve(conn, event)
            elif isinstance(event, protocol.Update):
                await self._write((await self._update(conn, event)).data)
                return

    def release(self) -> None:
        if self.mailbox is not None and self.server.locks.get(self.mailbox.id) is self:
            del self.server.locks[self.mailbox.id]
            if self._lock_fd is not None:
                maildir.unlock_mailbox(self._lock_fd)
                self._lock_fd = None
            metrics.pop3_session_closed()
            log.info("pop3: logout user=%s ip=%s retr=%d dele=%d", self.mailbox.address,
                     self.ip, self.retrieved, self.deleted)

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

    async def _write(self, data: bytes, *, quick: bool = False) -> None:
        self.writer.write(data)
        await self._drain(quick=quick)

    async def _drain(self, *, quick: bool = False) -> None:
        transport = self.writer.transport
        if not transport.get_write_buffer_size() and not transport.is_closing():
            return  # all of it is with the kernel already: nothing to wait for
        # A client that stops reading would otherwise hold the session (and its mailbox lock)
        # for ever once the socket buffers are full. The timeout counts silence: a client that
        # took some of the data within it is waited for again, however long the whole
        # transfer takes.
        limit = 1.0 if quick else self.pop3.timeout
        while True:
            unsent = _unsent_octets(transport)
            try:
                async with asyncio.timeout(limit):
                    await self.writer.drain()
                return
            except TimeoutError:
                if transport.is_closing() or _unsent_octets(transport) >= unsent:
                    raise _Disconnect from None

    # -- commands that need the outside world ------------------------------------------------

    async def _login(self, conn: protocol.Connection,
                     event: protocol.Authenticate) -> protocol.Send:
        pop3 = self.pop3
        user = _printable(event.username)
        keys = LoginThrottle.keys(self.address, event.username,
                                  trusted=is_trusted(self.address, pop3.trusted_networks))
        throttle = self.server.throttle
        if await self.workers.db(throttle.locked, keys):
            metrics.pop3_login_failed("locked-out")
            log.warning("pop3: login refused user=%s ip=%s reason=locked-out", user, self.ip)
            await asyncio.sleep(pop3.login_failure_delay)
            return conn.login_failed(LoginFailure.LOCKED)
        mailbox: MailboxRow | None = None
        if event.password:
            try:
                mailbox = await self._authenticate(event.username, event.password)
            except Exception as error:
                log.error("pop3: login user=%s ip=%s: index error: %s", user, self.ip, error)
                return conn.login_failed(LoginFailure.TEMPORARY)
        if mailbox is None:
            if await self.workers.db(throttle.failure, keys,
                                     max_failures=pop3.max_login_failures, lockout=pop3.lockout):
                log.warning("pop3: locking out user=%s ip=%s for %ss", user, self.ip,
                            pop3.lockout)
            metrics.pop3_login_failed("password")
            log.warning("pop3: login-failed user=%s ip=%s method=%s", user, self.ip,
                        event.mechanism)
            # Sleeping here delays only this client; other sessions go on.
            await asyncio.sleep(pop3.login_failure_delay)
            return conn.login_failed(LoginFailure.INVALID)
        await self.workers.db(throttle.success, keys)
        if mailbox.id in self.server.locks:
            log.info("pop3: login refused user=%s ip=%s reason=in-use", mailbox.address, self.ip)
            return conn.login_failed(LoginFailure.IN_USE)
        # Take this process's lock before the first await so two logins cannot both get it,
        # then the lock file that the other server processes respect.
        self.server.locks[mailbox.id] = self
        lock_fd = await self.workers.io(maildir.lock_mailbox,
                                        self.store.mailbox_dir(mailbox.address))
        if lock_fd is None:
            del self.server.locks[mailbox.id]
            log.info("pop3: login refused user=%s ip=%s reason=in-use", mailbox.address, self.ip)
            return conn.login_failed(LoginFailure.IN_USE)
        self._lock_fd = lock_fd
        metrics.pop3_session_opened()  # release() closes it with the lock
        self.mailbox = mailbox
        try:
            self.rows = await self.workers.db(self._snapshot, mailbox)
        except Exception as error:
            log.error("pop3: user=%s: cannot read the index: %s", mailbox.address, error)
            self.release()
            self.mailbox = None
            return conn.login_failed(LoginFailure.TEMPORARY)
        metrics.pop3_login()
        log.info("pop3: login user=%s ip=%s method=%s tls=%s messages=%d", mailbox.address,
                 self.ip, event.mechanism, "yes" if conn.tls_active else "no", len(self.rows))
        return conn.login_succeeded(
            [protocol.MessageInfo(row.uidl, row.crlf_size) for row in self.rows])

    def _snapshot(self, mailbox: MailboxRow) -> list[Entry]:
        """The maildrop as the index has it now (index thread). Messages delivered later are
        not shown until the next session. Ordered by the arrival time in the file name, which
        a reindex keeps, so message numbers stay the same too."""
        rows = [Entry.of(row) for row in self.store.index.messages(mailbox.id, maildir.INBOX)]
        rows.sort(key=lambda row: (maildir.arrival_time(row.filename, row.received), row.uidl))
        return rows

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
            raise _Disconnect from None
        conn.tls_started(plaintext_allowed=self._plaintext_allowed(True))

    async def _authenticate(self, username: str, password: str) -> MailboxRow | None:
        """The index lookup on the index thread, the argon2 check in the file pool: argon2
        releases the GIL, so logins run on every core and never hold up the index thread."""
        row = await self.workers.db(self.store.login_row, username)
        cache, ttl = self.server.login_cache, float(self.pop3.login_cache)
        if cache.accepts(row, password, ttl):
            return row
        accepted, new_hash = await self.workers.io(self.store.check_login, row, password)
        if not accepted or row is None:
            return None
        if new_hash:
            # Rehashed: the next login checks against the new hash (and is cached then).
            await self.workers.db(self.store.index.set_password, row.address, new_hash)
        else:
            cache.remember(row, password, ttl)
        return row

    async def _retrieve(self, conn: protocol.Connection, event: protocol.Retrieve) -> None:
        assert self.mailbox is not None
        index = event.number - 1
        row = self.rows[index]
        ahead, self._read_ahead = self._read_ahead, None
        if ahead is None or ahead.index != index:
            ahead = self._open(index)
        try:
            try:
                chunk, whole = await ahead.first
            except OSError as error:
                log.error("pop3: user=%s: cannot read %s: %s", self.mailbox.address,
                          row.filename, error)
                await self._write(conn.message_unavailable().data)
                return
            if whole is not None and event.body_lines is None:
                self.writer.write(event.status + whole)
                self._read_next(index)
                await self._drain()
            else:
                self._read_next(index)
                await self._stream(event, ahead.chunks, chunk)
        finally:
            ahead.chunks.close()
        if event.body_lines is None:
            self.retrieved += 1
            await self._mark_seen(index)

    def _read_next(self, index: int) -> None:
        """Clients fetch a mailbox in order: the message after `index` is read from disk
        while this one goes out (started after its bytes are handed to the transport), so its
        RETR finds it in memory instead of waiting for a trip to the file pool."""
        if index + 1 < len(self.rows):
            self._read_ahead = self._open(index + 1)

    def _open(self, index: int) -> _ReadAhead:
        """Start reading message `index` (0-based) in the file pool."""
        assert self.mailbox is not None
        path = self.store.message_path(self.mailbox, self.rows[index].row(self.mailbox.id))
        chunks = maildir.read_chunks(path, CHUNK_SIZE)
        first = asyncio.ensure_future(self.workers.io(_read_first, chunks))
        # A read-ahead nobody asks for may fail unseen (the message was expunged meanwhile).
        first.add_done_callback(lambda f: f.cancelled() or f.exception())
        return _ReadAhead(index, chunks, first)

    async def _stream(self, event: protocol.Retrieve, chunks: Iterator[bytes],
                      chunk: bytes | None) -> None:
        encoder = protocol.MessageEncoder(event.body_lines)
        # The status line, the message and the final dot go out in one write when the message
        # fits in one chunk: one send and one wake-up of the client instead of three.
        pending = [event.status]
        try:
            while chunk is not None:
                out = encoder.feed(chunk)
                if out:
                    pending.append(out)
                # A short read of a regular file is its end: no second trip to the pool.
                if encoder.done or len(chunk) < CHUNK_SIZE:
                    break
                await self._write(b"".join(pending))
                pending = []
                chunk = await self.workers.io(next, chunks, None)
        except OSError as error:
            # The +OK is already out: the transfer cannot be turned into an -ERR any more.
            log.error("pop3: read error while sending a message: %s", error)
            raise _Disconnect from None
        pending.append(encoder.finish())
        await self._write(b"".join(pending))

    async def _mark_seen(self, index: int) -> None:
        """RETR moves the message to cur/ with the S flag, so an IMAP client of the same store
        shows it as read. Failing here costs only the flag."""
        assert self.mailbox is not None
        row = self.rows[index]
        if row.subdir == "cur" and "S" in row.flags:
            return
        try:
            seen = await self.workers.db(self.store.mark_seen, self.mailbox,
                                         row.row(self.mailbox.id))
            self.rows[index] = Entry.of(seen)
        except Exception as error:
            log.warning("pop3: user=%s: cannot mark %s seen: %s", self.mailbox.address,
                        row.filename, error)

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


def bind(config: Config) -> list[tuple[socket.socket, bool, str]]:
    """Bind the `pop3.listen` (plain, with STLS) and `pop3.tls_listen` (implicit TLS) sockets,
    before the server forks its processes: (socket, implicit TLS?, scheme) each."""
    pop3 = config.pop3
    bound = []
    for listen, implicit, scheme in [(x, False, "pop3") for x in pop3.listen] + \
            [(x, True, "pop3s") for x in pop3.tls_listen]:
        bound.append((tcp_listener(listen), implicit, scheme))
    return bound


async def start(config: Config, workers: Workers,
                sockets: list[tuple[socket.socket, bool, str]],
                limits: ConnectionLimits | None = None,
                board: LoadBoard | None = None,
                logins: LoginCache | None = None) -> Listeners:
    """Serve POP3 on sockets bound by `bind`, counting connections in `limits` (shared by
    every server process). Returns the servers, their endpoints, and a closer that ends all
    sessions."""
    from lmtpd.server import ServeError

    pop3 = config.pop3
    server = Pop3Server(workers, limits, logins)
    if pop3.tls_listen and not pop3.tls_enabled:
        raise ServeError("pop3.tls_listen needs pop3.tls_cert and pop3.tls_key")
    if pop3.tls_enabled:
        for path in (pop3.tls_cert, pop3.tls_key):
            if not Path(path).is_file():
                raise ServeError(f"pop3: cannot read {path} (pop3.tls_cert / pop3.tls_key)")
        try:
            server.tls.get(pop3)
        except (OSError, ssl.SSLError) as error:
            raise ServeError(f"pop3: cannot load the TLS certificate and key: {error}") from None
    servers: list[BalancedListener] = []
    endpoints: list[str] = []
    board = board if board is not None else LoadBoard(1)
    for sock, implicit, scheme in sockets:

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         implicit_tls: bool = implicit) -> None:
            await server.accept(reader, writer, implicit_tls=implicit_tls)

        def streams(handle: Callable[..., Awaitable[None]] = handle) -> asyncio.BaseProtocol:
            # What asyncio.start_server makes for each connection.
            reader = asyncio.StreamReader(limit=READ_SIZE * 4)
            return asyncio.StreamReaderProtocol(reader, handle)

        listener = accept_balanced(sock, streams, board)
        servers.append(listener)
        endpoints.extend(_endpoint(scheme, listener))
    return servers, endpoints, server.close
