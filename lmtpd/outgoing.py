"""Mail a filter sends: redirects and vacation replies, each remembered so that it goes out
once, through `sieve.submission` in a pool of its own (a slow relay holds up nothing else)."""

from __future__ import annotations

import logging

from lmtpd import status
from lmtpd.sieve import (
    Redirect,
    SubmissionError,
    SubmissionUnavailable,
    Vacation,
    build_vacation_reply,
    prepare_redirect,
    send_message,
)
from lmtpd.status import Reply
from lmtpd.store.index import MailboxRow
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.delivery")
# How long a redirect is remembered when duplicate suppression is off.
REDIRECT_MEMORY = 86400


class Outgoing:
    def __init__(self, workers: Workers) -> None:
        self.workers = workers

    @property
    def submission(self) -> str:
        return self.workers.store.config.sieve.submission

    async def redirect(self, message: bytes, sender: str, mailbox: MailboxRow, message_id: str,
                       redirect: Redirect) -> Reply | None:
        """Send one redirect; None when sent (or sent before), else the reply for the
        recipient (451: the MTA retries, and what was sent is not sent again)."""
        # Remembered like a Message-ID, so a retried transaction does not redirect twice.
        key = f"{message_id} redirect {redirect.address}" if message_id else ""
        store = self.workers.store
        if key and await self.workers.db(lambda: store.index.is_duplicate(mailbox.id, key)):
            return None
        try:
            await self.workers.submit(send_message, self.submission, sender,
                                      [redirect.address], prepare_redirect(message,
                                                                           redirect.address))
        except (SubmissionError, SubmissionUnavailable) as error:
            log.error("redirect for %s to %s failed: %s", mailbox.address, redirect.address,
                      error)
            return status.temporary_failure("redirect failed, try again later")
        log.info("redirected mailbox=%s to=<%s> msgid=%s", mailbox.address, redirect.address,
                 message_id)
        if key:
            window = self.workers.store.config.lmtp.duplicate_window or REDIRECT_MEMORY
            await self.workers.db(lambda: store.index.remember_duplicate(mailbox.id, key, window))
        return None

    async def vacation(self, message: bytes, mailbox: MailboxRow, action: Vacation) -> None:
        """Send an auto-reply at most once per sender per `:days`. A failure to send is
        logged, not returned: the message itself is already stored."""
        sender = action.to.lower()
        store = self.workers.store
        if await self.workers.db(lambda: store.index.vacation_recently_sent(
                mailbox.id, action.handle, sender)):
            return
        reply = build_vacation_reply(action, message, mailbox.address)
        try:
            await self.workers.submit(send_message, self.submission, "", [action.to], reply)
        except (SubmissionError, SubmissionUnavailable) as error:
            log.error("vacation reply from %s to %s failed: %s", mailbox.address, action.to,
                      error)
            return
        await self.workers.db(lambda: store.index.remember_vacation(
            mailbox.id, action.handle, sender, action.seconds))
        log.info("vacation reply mailbox=%s to=<%s>", mailbox.address, action.to)
