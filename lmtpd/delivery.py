"""The delivery pipeline: the only place that decides a recipient's outcome.

For each accepted recipient, in RCPT order: loop check, then for each mailbox it resolved to:
filter (lmtpd.filtering), mail the filter sends (lmtpd.outgoing), and the copies to store
(lmtpd.copies: file durable first, then the row, with quota and duplicate checks inside the
row's transaction). Every path ends in exactly one Reply per recipient; an unexpected error
becomes 451 4.3.0 for that recipient, never a crash of the session.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from lmtpd import logs, metrics, status
from lmtpd.config import Config
from lmtpd.copies import CopyRequest, CopyWriter
from lmtpd.filtering import FilterPlan, SieveRunner
from lmtpd.outgoing import Outgoing
from lmtpd.quota_warnings import QuotaWarnings
from lmtpd.recipients import Recipient, RecipientLookup, Target
from lmtpd.sieve import DuplicateMark
from lmtpd.spool import Spool
from lmtpd.status import Reply
from lmtpd.store.index import MessageMeta, NotRecorded, TraceBatch
from lmtpd.store.meta import parse_meta
from lmtpd.store.worker import Workers
from lmtpd.trace_log import TraceLog

__all__ = ["Deliverer", "Recipient", "Transaction"]

log = logging.getLogger("lmtpd.delivery")
MAX_LHLO_IN_HEADER = 255
# The duplicate memory of Sieve's duplicate test shares a table with Message-IDs.
SIEVE_DUPLICATE = "sieve-duplicate "


def new_transaction_id() -> str:
    return secrets.token_hex(6).upper()


@dataclass
class Transaction:
    sender: str  # "" for the null sender
    recipients: list[Recipient]
    body: Spool
    lhlo: str = "localhost"
    id: str = field(default_factory=new_transaction_id)
    too_big: bool = False
    spool_failed: bool = False
    # Recipients refused at RCPT time, for the trace.
    refused: list[tuple[str, Reply]] = field(default_factory=list)
    _message: bytes | None = field(default=None, repr=False)

    def message_bytes(self) -> bytes:
        """The whole message in memory, read once, only when a filter needs it."""
        if self._message is None:
            self._message = self.body.getvalue()
        return self._message


class Copy(NamedTuple):
    """One stored copy of a message."""

    mailbox: str
    folder: str
    file: str  # relative to the folder: "new/<name>"


@dataclass
class Outcome:
    """What happened to one recipient: the reply, where copies went, what the filter did."""

    recipient: str
    reply: Reply
    stage: str = "data"
    original_to: str = ""  # the X-Original-To of its copies
    copies: list[Copy] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    @property
    def kind(self) -> str:
        if self.reply.is_success:
            return self.note or "delivered"
        return "deferred" if self.reply.is_temporary else "rejected"

    def row(self) -> dict[str, object]:
        return {
            "recipient": self.recipient, "outcome": self.kind, "stage": self.stage,
            "code": self.reply.code, "status": self.reply.enhanced, "reply": self.reply.text,
            "mailboxes": ",".join(dict.fromkeys(c.mailbox for c in self.copies)),
            "files": json.dumps([f"{c.mailbox} {c.folder} {c.file}" for c in self.copies]),
            "actions": json.dumps(self.actions), "seconds": round(self.seconds, 6),
            "original_to": self.original_to,
        }


def received_header(sender: str, rcpt: str, lhlo: str, hostname: str, txid: str,
                    original: str) -> bytes:
    """The fields on top of each copy. The addresses hold no CR, LF or NUL (refused at MAIL and
    RCPT by lmtpd.lmtp, in ORCPT by lmtpd.dsn), so none can start a field of its own."""
    lhlo = "".join(c for c in lhlo if 0x21 <= ord(c) < 0x7F)[:MAX_LHLO_IN_HEADER] or "unknown"
    date = email.utils.formatdate(localtime=True)
    return (
        f"Return-Path: <{sender}>\n"
        f"Delivered-To: {rcpt}\n"
        f"X-Original-To: {original}\n"
        f"Received: from {lhlo} by {hostname} (lmtpd) with LMTP id {txid} for <{rcpt}>; {date}\n"
    ).encode("utf-8", "surrogateescape")


def original_to_field(original: str) -> bytes:
    """X-Original-To as Sieve sees it at delivery: the one header field of those delivery puts
    on top that is the message's rather than the envelope's (a replay over stored copies
    keeps it too, lmtpd.replay)."""
    return f"X-Original-To: {original}\n".encode("utf-8", "surrogateescape")


_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def delivered_to_set(header_bytes: bytes) -> set[str]:
    """The addresses of the message's Delivered-To: fields, lower case, unfolded first
    (RFC 5322 §2.2.3): a folded one names its recipient as surely as a one-line one."""
    if b"delivered-to:" not in header_bytes.lower():
        return set()
    found = set()
    for line in _FOLD.sub(b"", header_bytes).split(b"\n"):
        if line[:13].lower() == b"delivered-to:":
            value = line[13:].strip().decode("ascii", "replace").strip("<>").lower()
            found.add(value)
    return found


def combine(replies: list[Reply]) -> Reply:
    """One reply for a recipient that expanded to several mailboxes: a temporary failure of any
    copy makes the MTA retry (duplicates are suppressed); otherwise success if any copy was
    stored."""
    for reply in replies:
        if reply.is_temporary:
            return reply
    for reply in replies:
        if reply.is_success:
            return reply
    return replies[0]


class Deliverer:
    def __init__(self, workers: Workers, sieve: SieveRunner | None = None) -> None:
        self.workers = workers
        self.store = workers.store
        self.sieve = sieve if sieve is not None else SieveRunner(self.store.config)
        self.recipients = RecipientLookup(workers)
        self.trace = TraceLog(workers)
        self.outgoing = Outgoing(workers)
        self.copies = CopyWriter(workers)
        self.warnings = QuotaWarnings(workers, self.copies)

    @property
    def config(self) -> Config:
        # Read at each use: a reload replaces the store's configuration.
        return self.store.config

    def reconfigure(self, config: Config, sieve: SieveRunner) -> None:
        """Swap in a configuration and the Sieve runner built for it (off the event loop)."""
        self.store.config = config
        self.sieve = sieve
        self.recipients.clear()  # local domains and the delimiter may have changed

    async def check_rcpt(self, address: str) -> tuple[Reply | None, Recipient]:
        """The RCPT-time verdict (None to accept) and the recipient with its mailboxes."""
        return await self.recipients.check(address)

    async def drain(self) -> None:
        """Write the trace rows still queued."""
        await self.trace.drain()

    async def deliver(self, tx: Transaction) -> list[Reply]:
        """One reply per recipient, in order."""
        meta = MessageMeta()
        seen_before: set[str] = set()
        if not (tx.too_big or tx.spool_failed):
            header_bytes = tx.body.header_bytes()
            meta = parse_meta(header_bytes)
            seen_before = delivered_to_set(header_bytes)
        replies: list[Reply] = []
        done: dict[str, Reply] = {}
        outcomes = [Outcome(rcpt, reply, stage="rcpt") for rcpt, reply in tx.refused]
        for recipient in tx.recipients:
            key = recipient.address.lower()
            # The same recipient twice in one transaction is delivered once; both get the reply.
            if key not in done:
                outcome = await self._deliver_one(tx, recipient, meta, seen_before)
                outcomes.append(outcome)
                done[key] = outcome.reply
            replies.append(done[key])
        self.trace.add(TraceBatch(tx.id, meta.message_id, tx.sender, [o.row() for o in outcomes]))
        return replies

    async def _deliver_one(self, tx: Transaction, recipient: Recipient, meta: MessageMeta,
                           seen_before: set[str]) -> Outcome:
        started = time.monotonic()
        outcome = Outcome(recipient.address, status.temporary_failure(),
                          original_to=recipient.original or recipient.address)
        if tx.too_big:
            outcome.reply = status.too_big(self.config.lmtp.max_message_size)
        elif tx.spool_failed:
            outcome.reply = status.temporary_failure("cannot spool the message")
        else:
            outcome.reply = await self._outcome(tx, recipient, meta, seen_before, outcome)
        outcome.seconds = time.monotonic() - started
        metrics.delivery(outcome.kind, outcome.reply.enhanced, outcome.seconds)
        if log.isEnabledFor(logging.INFO):  # the line is not built for nothing
            _log_outcome(tx, recipient, meta, outcome)
        return outcome

    async def _outcome(self, tx: Transaction, recipient: Recipient, meta: MessageMeta,
                       seen_before: set[str], outcome: Outcome) -> Reply:
        rcpt = recipient.address
        try:
            if rcpt.lower() in seen_before or any(
                m.address in seen_before for m in recipient.resolution.mailboxes
            ):
                return status.mail_loop(rcpt)
            if not recipient.targets:
                return status.unknown_user(rcpt)
            detail = recipient.resolution.detail
            replies = [await self._deliver_to_mailbox(tx, rcpt, target, meta, outcome, detail)
                       for target in recipient.targets]
            return combine(replies)
        except Exception:
            log.exception("delivery to %s failed", rcpt)
            return status.temporary_failure()

    async def _deliver_to_mailbox(self, tx: Transaction, rcpt: str, target: Target,
                                  meta: MessageMeta, outcome: Outcome,
                                  detail: str | None = None) -> Reply:
        mailbox = target.mailbox
        plan = await self._filter(tx, rcpt, target, outcome.original_to)
        if self.config.lmtp.detail_folder:
            plan.file_by_detail(detail)
        outcome.actions.extend(plan.describe())
        if plan.reject is not None:
            return status.rejected(plan.reject)
        if (plan.redirects or plan.vacations) and not self.config.sieve.submission:
            log.error("sieve for %s wants to send mail but sieve.submission is empty",
                      mailbox.address)
            return status.temporary_failure("sieve.submission is not configured")
        for redirect in plan.redirects:
            reply = await self.outgoing.redirect(redirect.message or tx.message_bytes(),
                                                 tx.sender, mailbox, meta.message_id, redirect)
            if reply is not None:
                return reply
        prefix = received_header(tx.sender, rcpt, tx.lhlo, self.config.hostname, tx.id,
                                 outcome.original_to)
        for number, action in enumerate(plan.stores):
            body = tx.body if action.message is None else Spool.from_bytes(action.message)
            stored = await self.copies.store_copy(CopyRequest(
                mailbox, action.folder, action.flags, prefix, body, meta,
                check_duplicate=number == 0))
            if stored is NotRecorded.DUPLICATE:
                outcome.note = "duplicate"
                return status.duplicate(rcpt)
            if stored is NotRecorded.OVER_QUOTA:
                return status.over_quota(rcpt)
            if isinstance(stored, Reply):
                return stored
            outcome.copies.append(Copy(mailbox.address, action.folder, stored.relpath))
        if plan.duplicate_marks:
            await self.workers.db(self._remember_marks, mailbox.id, plan.duplicate_marks)
        if plan.stores:
            await self.warnings.after_delivery(mailbox)
        for vacation in plan.vacations:
            await self.outgoing.vacation(tx.message_bytes(), mailbox, vacation)
        if not plan.stores:
            outcome.note = "discarded"
            return status.discarded(rcpt)
        return status.delivered(rcpt)

    async def _filter(self, tx: Transaction, rcpt: str, target: Target,
                      original: str) -> FilterPlan:
        if not target.script and self.sieve.before is None:
            return FilterPlan.keep()
        mailbox = target.mailbox
        sieve = self.sieve
        store = self.store

        def seen(key: str) -> bool:
            # Sieve's duplicate test, read-only; what it saw is remembered after the store.
            return self.workers.db_from_pool(
                lambda: store.index.is_duplicate(mailbox.id, SIEVE_DUPLICATE + key))

        def run() -> FilterPlan:
            return FilterPlan.from_result(sieve.run(
                target.script, original_to_field(original) + tx.message_bytes(),
                sender=tx.sender, recipient=rcpt,
                mailbox_address=mailbox.address,
                mailbox_exists=lambda folder: store.folder_exists(mailbox, folder),
                personal=target.personal.get if target.personal else None, seen=seen,
            ))

        return await self.workers.io(run)

    def _remember_marks(self, mailbox_id: int, marks: list[DuplicateMark]) -> None:
        """On the index thread: the values the duplicate test saw, each for its time."""
        for mark in marks:
            self.store.index.remember_duplicate(mailbox_id, SIEVE_DUPLICATE + mark.key,
                                                mark.seconds)


def _log_outcome(tx: Transaction, recipient: Recipient, meta: MessageMeta,
                 outcome: Outcome) -> None:
    fields = {"rcpt": f"<{recipient.address}>"}
    if outcome.reply.is_success:
        fields.update(
            mailbox=",".join(dict.fromkeys(c.mailbox for c in outcome.copies)) or "-",
            folder=",".join(dict.fromkeys(c.folder for c in outcome.copies)) or "-",
            size=str(tx.body.size), msgid=meta.message_id or "-", id=tx.id,
            delay=f"{outcome.seconds:.3f}",
        )
        if outcome.kind != "delivered":
            fields["note"] = outcome.kind
        log.info(logs.event("delivered", **fields))
    else:
        fields.update(status=outcome.reply.enhanced, reason=outcome.reply.text, id=tx.id)
        log.info(logs.event(outcome.kind, **fields))
