"""The delivery pipeline: the only place that decides a recipient's outcome.

For each accepted recipient, in RCPT order: loop check, quota, filter, duplicate check, then a
durable Maildir write followed by the index row. Every path ends in exactly one Reply per
recipient; an unexpected error becomes 451 4.3.0 for that recipient, never a crash of the
session.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import secrets
import time
from dataclasses import dataclass, field

from lmtpd import logs, metrics, status
from lmtpd.addresses import Resolution, Verdict
from lmtpd.config import Config
from lmtpd.filtering import SieveRunner
from lmtpd.rcpt_cache import RcptCache
from lmtpd.sieve import (
    Redirect,
    Reject,
    SieveResult,
    SubmissionError,
    SubmissionUnavailable,
    Vacation,
    build_vacation_reply,
    prepare_redirect,
    send_message,
)
from lmtpd.sieve import Store as SieveStore
from lmtpd.spool import Spool
from lmtpd.status import Reply
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow, MessageMeta, NotRecorded
from lmtpd.store.mailboxes import parse_meta
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.delivery")
MAX_LHLO_IN_HEADER = 255
# How long outcome rows for `lmtpd trace` may wait, so the rows of many deliveries share one
# index write instead of costing each delivery a trip to the index thread.
TRACE_DELAY = 0.05
# One transaction's rows for the trace: LMTP id, Message-ID, sender, rows.
TraceBatch = tuple[str, str, str, list[dict[str, object]]]


def new_transaction_id() -> str:
    return secrets.token_hex(6).upper()


@dataclass
class Recipient:
    address: str
    resolution: Resolution
    # The enabled mailboxes it resolved to at RCPT time, with their Sieve scripts.
    targets: list[Target] = field(default_factory=list)


@dataclass
class Transaction:
    sender: str  # "" for the null sender
    recipients: list[Recipient]
    body: Spool
    lhlo: str = "localhost"
    id: str = field(default_factory=new_transaction_id)
    too_big: bool = False
    line_too_long: bool = False
    spool_failed: bool = False
    # Recipients refused at RCPT time, for the trace.
    refused: list[tuple[str, Reply]] = field(default_factory=list)
    _message: bytes | None = field(default=None, repr=False)

    def message_bytes(self) -> bytes:
        """The whole message in memory, read once, only when a filter needs it."""
        if self._message is None:
            self._message = self.body.getvalue()
        return self._message


@dataclass
class Outcome:
    """What happened to one recipient: the reply, where copies went, what the filter did."""

    recipient: str
    reply: Reply
    stage: str = "data"
    copies: list[tuple[str, str, str]] = field(default_factory=list)  # mailbox, folder, file
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
            "mailboxes": ",".join(dict.fromkeys(c[0] for c in self.copies)),
            "files": json.dumps([f"{c[0]} {c[1]} {c[2]}" for c in self.copies]),
            "actions": json.dumps(self.actions), "seconds": round(self.seconds, 6),
        }


@dataclass(frozen=True)
class Target:
    """One mailbox a recipient resolved to, with what the index says of it for this message.
    `checked`: the quota and duplicate checks for this message were made before filtering
    (`over_quota`, `duplicate`); otherwise they are made when the index row is written."""

    mailbox: MailboxRow
    script: str | None
    over_quota: bool = False
    duplicate: bool = False
    checked: bool = False


@dataclass(frozen=True)
class StoreAction:
    folder: str = maildir.INBOX
    flags: tuple[str, ...] = ()


def check_recipient(resolution: Resolution, over_quota: bool) -> Reply | None:
    """The RCPT-time verdict: None to accept, else the reply that refuses."""
    rcpt = resolution.recipient
    match resolution.verdict:
        case Verdict.INVALID:
            return status.invalid_address(rcpt)
        case Verdict.NOT_LOCAL:
            return status.not_local(rcpt)
        case Verdict.UNKNOWN | Verdict.DISABLED:
            return status.unknown_user(rcpt)
    if over_quota:
        return status.over_quota(rcpt)
    return None


def received_header(sender: str, rcpt: str, lhlo: str, hostname: str, txid: str) -> bytes:
    lhlo = "".join(c for c in lhlo if 0x21 <= ord(c) < 0x7F)[:MAX_LHLO_IN_HEADER] or "unknown"
    date = email.utils.formatdate(localtime=True)
    return (
        f"Return-Path: <{sender}>\n"
        f"Delivered-To: {rcpt}\n"
        f"Received: from {lhlo} by {hostname} (lmtpd) with LMTP id {txid} for <{rcpt}>; {date}\n"
    ).encode("utf-8", "surrogateescape")


def delivered_to_set(header_bytes: bytes) -> set[str]:
    found = set()
    for line in header_bytes.split(b"\n"):
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


CachedRcpt = tuple[Reply | None, Resolution, list[Target]]


class Deliverer:
    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.store = workers.store
        self.config = workers.store.config
        self.sieve = SieveRunner(self.config)
        self.rcpt_cache: RcptCache[CachedRcpt] = RcptCache(self.store.config.store.index_path)
        self._trace: list[TraceBatch] = []
        self._trace_timer: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Future[None]] = set()

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.rcpt_cache.clear()  # local domains and the delimiter may have changed
        self.sieve.reconfigure(config)

    async def check_rcpt(self, address: str) -> tuple[Reply | None, Recipient]:
        """The RCPT-time verdict (None to accept) and the recipient with its mailboxes."""
        cached = self.rcpt_cache.get(address)
        if cached is not None:
            refusal, resolution, targets = cached
        else:
            generation, refusal, resolution, targets = await self.workers.db(
                self._check_rcpt, address)
            # What depends on a mailbox's usage (a quota) must be looked up every time.
            if all(t.mailbox.quota <= 0 for t in targets) and (
                    refusal is None or refusal.enhanced != status.over_quota("").enhanced):
                self.rcpt_cache.put(address, generation, (refusal, resolution, targets))
        return refusal, Recipient(address, resolution, list(targets))

    def _check_rcpt(self, address: str
                    ) -> tuple[int | None, Reply | None, Resolution, list[Target]]:
        """On the index thread, in one read transaction: resolution, the quota check, and the
        Sieve scripts, so a message for a mailbox without one needs no index read at DATA.
        First comes the accounts generation these answers may be cached under."""
        self.rcpt_cache.open()
        generation = self.rcpt_cache.generation()
        index = self.store.index
        targets: list[Target] = []
        with index.snapshot():
            resolution = self.store.resolve(address)
            over_quota = False
            if resolution.verdict is Verdict.OK:
                rows = self._rows(resolution)
                over_quota = bool(rows) and all(self.store.over_quota(row) for row in rows)
                targets = [Target(row, index.get_sieve_script(row.id))
                           for row in rows if row.enabled]
        return generation, check_recipient(resolution, over_quota), resolution, targets

    def _rows(self, resolution: Resolution) -> list[MailboxRow]:
        rows = [self.store.index.get_mailbox(m.address) for m in resolution.mailboxes]
        return [r for r in rows if r is not None]

    async def deliver(self, tx: Transaction) -> list[Reply]:
        """One reply per recipient, in order."""
        meta = MessageMeta()
        seen_before: set[str] = set()
        if not (tx.too_big or tx.line_too_long or tx.spool_failed):
            header_bytes = tx.body.header_bytes()
            meta = parse_meta(header_bytes)
            seen_before = delivered_to_set(header_bytes)
        replies: list[Reply] = []
        done: dict[str, Reply] = {}
        records = [Outcome(rcpt, reply, stage="rcpt") for rcpt, reply in tx.refused]
        for recipient in tx.recipients:
            key = recipient.address.lower()
            # The same recipient twice in one transaction is delivered once; both get the reply.
            if key not in done:
                record = await self._deliver_one(tx, recipient, meta, seen_before)
                records.append(record)
                done[key] = record.reply
            replies.append(done[key])
        # The trace is a convenience: its rows are written after the replies go out, those
        # of the deliveries within TRACE_DELAY together, and a failure to write them never
        # fails a delivery. drain() writes what is queued.
        self._trace.append((tx.id, meta.message_id, tx.sender, [r.row() for r in records]))
        if self._trace_timer is None:
            self._trace_timer = asyncio.get_running_loop().call_later(
                TRACE_DELAY, self._flush_trace)
        return replies

    def _flush_trace(self) -> None:
        self._trace_timer = None
        batches, self._trace = self._trace, []
        if batches:
            pending = asyncio.ensure_future(self._write_trace(batches))
            self._pending.add(pending)
            pending.add_done_callback(self._pending.discard)

    async def _write_trace(self, batches: list[TraceBatch]) -> None:
        try:
            await self.workers.db(self.store.index.record_outcomes_batches, batches,
                                  self.config.lmtp.trace_retention)
        except Exception as error:
            log.warning("recording %d outcomes failed: %s", len(batches), error)

    async def drain(self) -> None:
        """Write the trace rows still queued."""
        if self._trace_timer is not None:
            self._trace_timer.cancel()
            self._flush_trace()
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _deliver_one(self, tx: Transaction, recipient: Recipient, meta: MessageMeta,
                           seen_before: set[str]) -> Outcome:
        started = time.monotonic()
        record = Outcome(recipient.address, status.temporary_failure())
        if tx.too_big:
            record.reply = status.too_big(self.config.lmtp.max_message_size)
        elif tx.line_too_long:
            record.reply = status.line_too_long()
        elif tx.spool_failed:
            record.reply = status.temporary_failure("cannot spool the message")
        else:
            record.reply = await self._outcome(tx, recipient, meta, seen_before, record)
        record.seconds = time.monotonic() - started
        metrics.delivery(record.kind, record.reply.enhanced, record.seconds)
        if log.isEnabledFor(logging.INFO):  # the line is not built for nothing
            self._log_outcome(tx, recipient, meta, record)
        return record

    @staticmethod
    def _log_outcome(tx: Transaction, recipient: Recipient, meta: MessageMeta,
                     record: Outcome) -> None:
        fields = {"rcpt": f"<{recipient.address}>"}
        if record.reply.is_success:
            fields.update(
                mailbox=",".join(dict.fromkeys(c[0] for c in record.copies)) or "-",
                folder=",".join(dict.fromkeys(c[1] for c in record.copies)) or "-",
                size=str(tx.body.size), msgid=meta.message_id or "-", id=tx.id,
                delay=f"{record.seconds:.3f}",
            )
            if record.kind != "delivered":
                fields["note"] = record.kind
            log.info(logs.event("delivered", **fields))
        else:
            fields.update(status=record.reply.enhanced, reason=record.reply.text, id=tx.id)
            log.info(logs.event(record.kind, **fields))

    async def _outcome(self, tx: Transaction, recipient: Recipient, meta: MessageMeta,
                       seen_before: set[str], record: Outcome) -> Reply:
        rcpt = recipient.address
        try:
            if rcpt.lower() in seen_before or any(
                m.address in seen_before for m in recipient.resolution.mailboxes
            ):
                return status.mail_loop(rcpt)
            targets = recipient.targets
            if self.sieve.before is not None or any(t.script for t in targets):
                # A filter may act before anything is stored (reject, redirect, vacation), so
                # a duplicate or over-quota message must be caught before it runs.
                targets = await self.workers.db(self._prepare, recipient.resolution,
                                                tx.body.size, meta.message_id)
            if not targets:
                return status.unknown_user(rcpt)
            replies = [await self._deliver_to_mailbox(tx, rcpt, target, meta, record)
                       for target in targets]
            return combine(replies)
        except Exception:
            log.exception("delivery to %s failed", rcpt)
            return status.temporary_failure()

    def _prepare(self, resolution: Resolution, size: int, message_id: str) -> list[Target]:
        """On the index thread, in one hop: for each enabled mailbox of a recipient, the quota
        check at DATA, the duplicate check and its Sieve script."""
        window = self.config.lmtp.duplicate_window
        since = time.time() - window
        index = self.store.index
        with index.snapshot():
            return [
                Target(
                    row,
                    script=index.get_sieve_script(row.id),
                    over_quota=self.store.over_quota(row, size),
                    duplicate=bool(window and message_id
                                   and index.is_duplicate(row.id, message_id, since)),
                    checked=True,
                )
                for row in self._rows(resolution) if row.enabled
            ]

    async def _deliver_to_mailbox(self, tx: Transaction, rcpt: str, target: Target,
                                  meta: MessageMeta, record: Outcome) -> Reply:
        mailbox = target.mailbox
        if target.over_quota:
            return status.over_quota(rcpt)
        remember = bool(self.config.lmtp.duplicate_window and meta.message_id)
        if target.duplicate:
            record.note = "duplicate"
            return status.duplicate(rcpt)
        plan = await self._filter(tx, rcpt, mailbox, target.script)
        record.actions.extend(plan.describe())
        if plan.reject is not None:
            return status.rejected(plan.reject)
        if (plan.redirects or plan.vacations) and not self.config.sieve.submission:
            log.error("sieve for %s wants to send mail but sieve.submission is empty",
                      mailbox.address)
            return status.temporary_failure("sieve.submission is not configured")
        for redirect in plan.redirects:
            reply = await self._redirect(tx, mailbox, meta, redirect)
            if reply is not None:
                return reply
        prefix = received_header(tx.sender, rcpt, tx.lhlo, self.config.hostname, tx.id)
        for action in plan.stores:
            stored = await self._store(tx, target, meta, action, prefix, remember)
            if stored is NotRecorded.DUPLICATE:
                record.note = "duplicate"
                return status.duplicate(rcpt)
            if stored is NotRecorded.OVER_QUOTA:
                return status.over_quota(rcpt)
            if isinstance(stored, Reply):
                return stored
            record.copies.append((mailbox.address, action.folder, stored.relpath))
        for vacation in plan.vacations:
            await self._vacation(tx, mailbox, vacation)
        if not plan.stores:
            record.note = "discarded"
            return status.discarded(rcpt)
        return status.delivered(rcpt)

    async def _store(self, tx: Transaction, target: Target, meta: MessageMeta,
                     action: StoreAction, prefix: bytes, remember: bool
                     ) -> Reply | NotRecorded | maildir.StoredFile:
        """The stored file, or why it was not stored: the reply, or the check that refused it
        when the row was written (the file is removed again then)."""
        mailbox = target.mailbox
        index = self.store.index
        window = self.config.lmtp.duplicate_window
        checks = {} if target.checked else {
            "duplicate_since": time.time() - window if window else None,
            "quota": mailbox.quota,
        }
        written: list[maildir.StoredFile] = []

        def write() -> maildir.StoredFile:
            stored = self.store.write_file(mailbox, action.folder, prefix, tx.body,
                                           action.flags)
            written.append(stored)
            return stored

        def record(stored: maildir.StoredFile) -> int | NotRecorded:
            return index.record_delivery(mailbox.id, stored, meta, remember, **checks)

        try:
            recorded = await self.workers.write_then_record(write, record, index)
        except Exception as error:
            if written:
                log.error("index row for %s failed: %s", mailbox.address, error)
                await self.workers.io(self.store.discard_file, mailbox, written[0])
                return status.temporary_failure("cannot update the index")
            if isinstance(error, OSError):
                log.error("write for %s failed: %s", mailbox.address, error)
                return status.temporary_failure(f"cannot store message: {error.strerror}")
            raise
        if isinstance(recorded, NotRecorded):
            await self.workers.io(self.store.discard_file, mailbox, written[0])
            return recorded
        return written[0]

    async def _filter(self, tx: Transaction, rcpt: str, mailbox: MailboxRow,
                      script: str | None) -> FilterPlan:
        if not script and self.sieve.before is None:
            return FilterPlan(stores=[StoreAction()])

        def run() -> SieveResult | None:
            return self.sieve.run(
                script, tx.message_bytes(), sender=tx.sender, recipient=rcpt,
                mailbox_address=mailbox.address,
                mailbox_exists=lambda folder: self.store.folder_exists(mailbox, folder),
            )

        result = await self.workers.io(run)
        return FilterPlan.from_result(result)

    async def _redirect(self, tx: Transaction, mailbox: MailboxRow, meta: MessageMeta,
                        redirect: Redirect) -> Reply | None:
        # Remembered like a Message-ID, so a retried transaction does not redirect twice.
        key = f"{meta.message_id} redirect {redirect.address}" if meta.message_id else ""
        window = self.config.lmtp.duplicate_window or 86400
        if key and await self.workers.db(
            self.store.index.is_duplicate, mailbox.id, key, time.time() - window
        ):
            return None
        message = prepare_redirect(tx.message_bytes(), redirect.address)
        try:
            await self.workers.io(send_message, self.config.sieve.submission, tx.sender,
                                  [redirect.address], message)
        except (SubmissionError, SubmissionUnavailable) as error:
            log.error("redirect for %s to %s failed: %s", mailbox.address, redirect.address,
                      error)
            return status.temporary_failure("redirect failed, try again later")
        log.info("redirected mailbox=%s to=<%s> msgid=%s", mailbox.address, redirect.address,
                 meta.message_id)
        if key:
            await self.workers.db(self.store.index.remember_duplicate, mailbox.id, key)
        return None

    async def _vacation(self, tx: Transaction, mailbox: MailboxRow, action: Vacation) -> None:
        """Send an auto-reply at most once per sender per `:days`. A failure to send is
        logged, not returned: the message itself is already stored."""
        since = time.time() - action.seconds
        if await self.workers.db(self.store.index.vacation_recently_sent, mailbox.id,
                                 action.handle, action.to.lower(), since):
            return
        reply = build_vacation_reply(action, tx.message_bytes(), mailbox.address)
        try:
            await self.workers.io(send_message, self.config.sieve.submission, "", [action.to],
                                  reply)
        except (SubmissionError, SubmissionUnavailable) as error:
            log.error("vacation reply from %s to %s failed: %s", mailbox.address, action.to,
                      error)
            return
        await self.workers.db(self.store.index.remember_vacation, mailbox.id, action.handle,
                              action.to.lower())
        log.info("vacation reply mailbox=%s to=<%s>", mailbox.address, action.to)


@dataclass
class FilterPlan:
    """What the filter decided for one copy, grouped by how delivery carries it out."""

    stores: list[StoreAction] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    vacations: list[Vacation] = field(default_factory=list)
    reject: str | None = None

    def describe(self) -> list[str]:
        """The plan in words, for `lmtpd trace`."""
        words = [f"store {s.folder}" + (f" {' '.join(s.flags)}" if s.flags else "")
                 for s in self.stores]
        words += [f"redirect {r.address}" for r in self.redirects]
        words += [f"vacation {v.to}" for v in self.vacations]
        if self.reject is not None:
            words.append(f"reject {self.reject}")
        if not self.stores and not self.redirects and self.reject is None:
            words.append("discard")
        return words

    @classmethod
    def from_result(cls, result: SieveResult | None) -> FilterPlan:
        if result is None:
            return cls(stores=[StoreAction()])
        plan = cls()
        for action in result.actions:
            if isinstance(action, SieveStore):
                folder = action.folder
                if not maildir.is_inbox(folder) and not maildir.valid_folder(folder):
                    log.warning("sieve folder %r is not a valid name; storing in INBOX", folder)
                    folder = maildir.INBOX
                store = StoreAction(folder, tuple(action.flags))
                if store not in plan.stores:
                    plan.stores.append(store)
            elif isinstance(action, Redirect):
                plan.redirects.append(action)
            elif isinstance(action, Vacation):
                plan.vacations.append(action)
            elif isinstance(action, Reject):
                plan.reject = action.reason
        return plan
