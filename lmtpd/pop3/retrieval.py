"""RETR and TOP for one POP3 session: messages streamed from the disk pool in chunks, the
next message read ahead while this one goes out, and a retrieved message marked seen."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from lmtpd.pop3 import protocol
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow, MessageRow
from lmtpd.store.worker import Workers
from lmtpd.textsession import Disconnect

log = logging.getLogger("lmtpd.pop3")
# Messages are streamed in pieces of this size: big enough to keep thread hops few, small
# enough that a 50 MB message costs well under a megabyte of memory per session.
CHUNK_SIZE = 256 * 1024


class Output(Protocol):
    """The session's side of the connection."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def send(self, data: bytes) -> None: ...


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


class Retrieval:
    def __init__(self, workers: Workers, mailbox: MailboxRow, rows: list[Entry],
                 out: Output) -> None:
        self.workers = workers
        self.store = workers.store
        self.mailbox = mailbox
        self.rows = rows
        self.out = out
        self.retrieved = 0
        self._read_ahead: _ReadAhead | None = None

    async def retrieve(self, conn: protocol.Connection, event: protocol.Retrieve) -> None:
        """Answer RETR or TOP; a RETR marks the message seen."""
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
                await self.out.send(conn.message_unavailable().data)
                return
            if whole is not None and event.body_lines is None:
                self.out.write(event.status + whole)
                self._read_next(index)
                await self.out.drain()
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
                await self.out.send(b"".join(pending))
                pending = []
                chunk = await self.workers.io(next, chunks, None)
        except OSError as error:
            # The +OK is already out: the transfer cannot be turned into an -ERR any more.
            log.error("pop3: read error while sending a message: %s", error)
            raise Disconnect from None
        pending.append(encoder.finish())
        await self.out.send(b"".join(pending))

    async def _mark_seen(self, index: int) -> None:
        """RETR moves the message to cur/ with the S flag, so an IMAP client of the same store
        shows it as read. Failing here costs only the flag."""
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
