"""One stored copy: the message file made durable first, then its index row, with the quota
and duplicate checks inside the row's transaction; a file whose row is refused or fails is
removed again, so no half-delivery stays visible."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lmtpd import status
from lmtpd.status import Reply
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow, MessageMeta, NotRecorded
from lmtpd.store.maildir import Body
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.delivery")


@dataclass(frozen=True)
class CopyRequest:
    """Where and how one copy is stored."""

    mailbox: MailboxRow
    folder: str
    flags: tuple[str, ...]
    prefix: bytes  # the trace headers lmtpd puts on top
    body: Body
    meta: MessageMeta
    # The first copy of a delivery into a mailbox is checked against the duplicate memory;
    # further copies of the same delivery (other folders) are not duplicates of it.
    check_duplicate: bool = True


class CopyWriter:
    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.store = workers.store

    async def store_copy(self, request: CopyRequest
                         ) -> Reply | NotRecorded | maildir.StoredFile:
        """The stored file, or why it was not stored: a reply (a write or index failure), or
        the check that refused it in the row's transaction."""
        mailbox = request.mailbox
        config = self.store.config
        written: list[maildir.StoredFile] = []

        def write() -> maildir.StoredFile:
            stored = self.store.write_file(mailbox, request.folder, request.prefix,
                                           request.body, request.flags)
            written.append(stored)
            return stored

        def record(stored: maildir.StoredFile) -> int | NotRecorded:
            return self.store.index.record_delivery(
                mailbox.id, stored, request.meta, quota=mailbox.quota,
                duplicate_window=config.lmtp.duplicate_window,
                check_duplicate=request.check_duplicate)

        try:
            recorded = await self.workers.write_then_record(write, record)
        except Exception as error:
            if written:
                log.error("index row for %s failed: %s", mailbox.address, error)
                await self._undo(mailbox, written[0])
                return status.temporary_failure("cannot update the index")
            if isinstance(error, OSError):
                log.error("write for %s failed: %s", mailbox.address, error)
                return status.temporary_failure(f"cannot store message: {error.strerror}")
            raise
        if isinstance(recorded, NotRecorded):
            await self._undo(mailbox, written[0])
            return recorded
        return written[0]

    async def _undo(self, mailbox: MailboxRow, stored: maildir.StoredFile) -> None:
        await self.workers.io(self.store.discard_file, mailbox, stored)
