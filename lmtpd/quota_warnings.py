"""Quota warnings: when a delivery takes a mailbox's usage up past one of `quota.warnings`,
one warning message into its INBOX, stored through the same copy path as any message (so it
counts in usage). Each rise past a level warns once; the index remembers which levels were
warned of and forgets a level when usage drops below it again."""

from __future__ import annotations

import email.utils
import logging
import secrets

from lmtpd import logs
from lmtpd.copies import CopyRequest, CopyWriter
from lmtpd.spool import Spool
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow, MessageMeta
from lmtpd.store.index.quota import PER, level_of
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.delivery")
_UNITS = (("G", 1024**3), ("M", 1024**2), ("K", 1024))


def size_text(size: int) -> str:
    """A size as the configuration writes it: `100M` when it is a whole number of a unit,
    else a number of bytes."""
    for unit, factor in _UNITS:
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


def percent_text(level: int) -> str:
    return f"{level * 100 / PER:g}%"


def warning_message(*, hostname: str, address: str, level: int, quota: int,
                    used: int) -> tuple[bytes, str]:
    """The warning as stored (LF line ends) and its Message-ID."""
    message_id = f"<quota-{secrets.token_hex(8)}@{hostname}>"
    percent = percent_text(level)
    text = (
        f"From: MAILER-DAEMON@{hostname}\n"
        f"To: <{address}>\n"
        f"Subject: Quota warning: {percent} of {size_text(quota)} used\n"
        f"Date: {email.utils.formatdate(localtime=True)}\n"
        f"Message-ID: {message_id}\n"
        f"Auto-Submitted: auto-generated\n"
        f"MIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset=us-ascii\n"
        f"Content-Transfer-Encoding: 7bit\n"
        f"\n"
        f"The mailbox {address} now holds {used} bytes, {percent} or more of its\n"
        f"quota of {size_text(quota)}. When it is full, new mail for it is refused.\n"
        f"Delete messages you no longer need to make room.\n"
    )
    return text.encode("ascii", "replace"), message_id


class QuotaWarnings:
    def __init__(self, workers: Workers, copies: CopyWriter) -> None:
        self.workers = workers
        self.store = workers.store
        self.copies = copies

    async def after_delivery(self, mailbox: MailboxRow) -> None:
        """Store the warning a delivery into `mailbox` has made due, if any. Never raises:
        a warning that cannot be stored is logged and tried again at the next delivery."""
        config = self.store.config
        levels = [level_of(f) for f in config.quota.thresholds]
        if not levels or mailbox.quota <= 0:
            return
        index = self.store.index
        try:
            level = await self.workers.db(index.quota_warning_due, mailbox.id, mailbox.quota,
                                          levels)
            if level is None:
                return
            _, used = await self.workers.db(index.usage, mailbox.id)
        except Exception as error:
            log.warning("quota warning check for %s failed: %s", mailbox.address, error)
            return
        body, message_id = warning_message(hostname=config.hostname, address=mailbox.address,
                                           level=level, quota=mailbox.quota, used=used)
        prefix = f"Return-Path: <>\nDelivered-To: {mailbox.address}\n".encode()
        stored = await self.copies.store_copy(CopyRequest(
            mailbox, maildir.INBOX, (), prefix, Spool.from_bytes(body),
            MessageMeta(message_id=message_id, from_addr=f"MAILER-DAEMON@{config.hostname}",
                        subject=f"Quota warning: {percent_text(level)}"),
            check_duplicate=False, check_quota=False))
        if isinstance(stored, maildir.StoredFile):
            log.info(logs.event("quota-warning", mailbox=mailbox.address,
                                level=percent_text(level), used=str(used),
                                quota=str(mailbox.quota)))
            return
        log.warning("quota warning for %s could not be stored: %s", mailbox.address, stored)
        try:
            await self.workers.db(index.forget_quota_warning, mailbox.id, level)
        except Exception as error:
            log.warning("quota warning mark for %s stays: %s", mailbox.address, error)
