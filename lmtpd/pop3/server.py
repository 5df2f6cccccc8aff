"""POP3 listeners: sockets, TLS (STLS and implicit), limits, throttling, and the store calls
behind the session state machine of lmtpd.pop3.protocol.

Blocking work never runs on the event loop: the password check, the maildrop snapshot, the
seen flag and the deletes go to the index thread, message file reads to the file pool.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from lmtpd import metrics
from lmtpd.config import Pop3Config
from lmtpd.login_cache import LoginCache
from lmtpd.logins import Attempt, Refusal
from lmtpd.pop3 import protocol
from lmtpd.pop3.protocol import LoginFailure
from lmtpd.pop3.retrieval import Entry, Retrieval
from lmtpd.shared import ConnectionCounts
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow
from lmtpd.store.reconcile import Reconciler
from lmtpd.store.worker import Workers
from lmtpd.textsession import TextServer, TextSession
from lmtpd.throttle import IPAddress, plaintext_auth_allowed

log = logging.getLogger("lmtpd.pop3")

READ_SIZE = 4096

_FAILURES = {Refusal.INVALID: LoginFailure.INVALID, Refusal.LOCKED: LoginFailure.LOCKED,
             Refusal.TEMPORARY: LoginFailure.TEMPORARY}


class Pop3Server(TextServer):
    """What the POP3 connections of one process share: limits, logins, TLS, and the mailbox
    locks of this process."""

    service = "pop3"

    def __init__(self, workers: Workers, limits: ConnectionCounts | None = None,
                 logins: LoginCache | None = None) -> None:
        super().__init__(workers, limits, logins)
        self.reconciler = Reconciler(workers)
        self.locks: dict[int, Session] = {}

    def section(self) -> Pop3Config:
        return self.config.pop3

    def refuse(self, writer: asyncio.StreamWriter, **options: Any) -> None:
        if not options.get("implicit_tls"):  # before a handshake, nothing can be said
            writer.write(protocol.err("[SYS/TEMP] Too many connections, try again later."))

class Session(TextSession):
    """One POP3 connection: drives a protocol.Connection and does the I/O it asks for."""

    service = "pop3"
    read_size = READ_SIZE
    machine: protocol.Connection  # the session state machine, made when the session starts

    server: Pop3Server

    def __init__(self, server: Pop3Server, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, address: IPAddress | None, ip: str,
                 task: asyncio.Task[Any]) -> None:
        super().__init__(server, reader, writer, address, ip, task)
        self.workers = server.workers
        self.store = server.workers.store
        self.mailbox: MailboxRow | None = None
        self.rows: list[Entry] = []
        self.retrieval: Retrieval | None = None
        self._lock_fd: int | None = None
        self.deleted = 0

    @property
    def pop3(self) -> Pop3Config:
        return self.server.config.pop3

    @property
    def timeout(self) -> float:
        return float(self.pop3.timeout)

    def plaintext_allowed(self, tls_active: bool) -> bool:
        pop3 = self.pop3
        return plaintext_auth_allowed(
            self.ip, tls_active=tls_active, allow_plaintext_auth=pop3.allow_plaintext_auth,
            trusted_networks=pop3.trusted_networks)

    def tls_context(self) -> ssl.SSLContext | None:
        return self.server.tls.get(self.pop3)

    # -- connection life --------------------------------------------------------------------

    async def run(self, implicit_tls: bool = False, **_: Any) -> None:
        context = self.tls_context()
        if implicit_tls:
            if context is None:
                log.error("pop3: a POP3S connection but no certificate (pop3.tls_cert and "
                          "pop3.tls_key were removed by a reload?)")
                return
            await self.writer.start_tls(context, ssl_handshake_timeout=self.handshake_timeout())
        self.machine = protocol.Connection(
            hostname=self.server.config.hostname,
            tls_available=context is not None,
            tls_active=implicit_tls,
            plaintext_allowed=self.plaintext_allowed(implicit_tls),
            max_errors=self.pop3.max_errors,
        )
        await self.serve(self.machine)

    async def handle(self, event: object) -> bool:
        if isinstance(event, protocol.Retrieve):
            assert self.retrieval is not None
            await self.retrieval.retrieve(self.machine, event)
            return False
        assert isinstance(event, protocol.Update)
        answer = await self._update(self.machine, event)
        # The mailbox is given back before the client hears that its session is over, so it
        # can log in again the moment it reads the answer.
        self.release()
        await self.send(answer.data)
        return True

    def end(self) -> None:
        self.release()

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

    async def tls_started(self) -> None:
        self.machine.tls_started(plaintext_allowed=self.plaintext_allowed(True))

    def tls_failed(self) -> None:
        self.machine.tls_failed()

    # -- commands that need the outside world ------------------------------------------------

    async def login(self, event: protocol.Authenticate) -> protocol.Send:
        conn = self.machine
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

    async def _update(self, conn: protocol.Connection, event: protocol.Update) -> protocol.Send:
        assert self.mailbox is not None
        wanted = [self.rows[n - 1] for n in event.numbers]
        if not wanted:
            return conn.update_finished(deleted=0, failed=0)
        self.finishing = True
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


Pop3Server.session_class = Session
