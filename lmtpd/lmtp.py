"""The LMTP wire: an aiosmtpd LMTP subclass and its handler. No delivery logic lives here.

aiosmtpd answers several DATA paths with a single line (size limit, long line, exceptions),
which desynchronises a client that waits for one reply per recipient. This module reads DATA
itself, streaming it into a Spool, and always answers one line per accepted recipient.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from collections.abc import Callable
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import Envelope, Session, syntax

from lmtpd import dsn, logs, metrics, status
from lmtpd.config import Config
from lmtpd.data_reader import DataReader
from lmtpd.delivery import Deliverer, Recipient, Transaction
from lmtpd.spool import Spool

log = logging.getLogger("lmtpd.lmtp")

# Longest command line (LHLO, MAIL, RCPT, ...) without its CRLF; a longer one gets
# 500 5.5.2 and the session goes on. RFC 5321 §4.5.3.1.4 allows 512 plus what extensions
# add; DSN's ORCPT= alone may take 500 more.
COMMAND_LINE_LIMIT = 4096
# A path in its plain form: <dot-atom@domain>, then the parameters after spaces.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"[ \t]*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*(.*)\Z",
    re.DOTALL)
_PATH_BREAK = re.compile("[\r\n\x00]")


def path_refusal(address: str, smtputf8: bool) -> status.Reply | None:
    """Why a MAIL or RCPT path cannot be taken, or None: a non-ASCII one needs SMTPUTF8
    (RFC 6531 §3.5) and must be UTF-8. (A CR or NUL never gets this far: see
    LmtpSession.smtp_MAIL.)"""
    if address.isascii():
        return None
    if not smtputf8:
        return status.utf8_needs_smtputf8()
    try:
        address.encode("utf-8")  # aiosmtpd keeps invalid UTF-8 as surrogates
    except UnicodeEncodeError:
        return status.bad_utf8_path()
    return None


class LmtpEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.recipients: list[Recipient] = []
        self.refused: list[tuple[str, status.Reply]] = []


class LmtpSession(LMTP):
    """aiosmtpd's LMTP with replies that always carry enhanced status codes and a DATA
    phase that answers once per recipient on every path."""

    # aiosmtpd gives the connection's StreamReader this limit, and asyncio pauses reading
    # the socket whenever more than twice the limit is buffered: at 1001 octets a 100 KB
    # body costs dozens of pause/resume round trips. It also bounds what a command line can
    # hold in memory: aiosmtpd reads a longer one in pieces and drops it.
    line_length_limit = 64 * 1024
    command_size_limit = COMMAND_LINE_LIMIT

    def __init__(self, handler: LmtpHandler, *,
                 on_close: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        # aiosmtpd keeps the limits per command in one dict shared by every session (and
        # grows MAIL's at each EHLO); each session gets its own, the same for every command.
        self.command_size_limits: collections.defaultdict[str, int] = collections.defaultdict(
            lambda: COMMAND_LINE_LIMIT)
        self._heard_at = self.loop.time()
        self._on_close = on_close
        self.dsn_params: dsn.Params = []  # those of the MAIL or RCPT being handled
        self._lhlo_in_progress = False
        self._greeted = False
        self.in_transaction = False

    def data_received(self, data: bytes) -> None:
        self._heard_at = self.loop.time()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        """lmtp.timeout counts seconds of silence. aiosmtpd restarts its timer only when a
        command is complete, which would cut off a slow DATA phase; here any bytes received
        push the deadline back, so a silent client is dropped (nothing of an unfinished
        message is stored) and a slow one is not."""
        silent = self.loop.time() - self._heard_at
        if silent < self._timeout_duration:
            self._reset_timeout(self._timeout_duration - silent)
            return
        super()._timeout_cb()

    def connection_lost(self, error: Exception | None) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        super().connection_lost(error)

    def _create_envelope(self) -> LmtpEnvelope:
        return LmtpEnvelope()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser for MAIL and RCPT, minus the typing.Protocol class it
        defines on every call (a class creation per command, measurable under load), and
        with the DSN parameters taken off into `dsn_params`."""
        self.dsn_params = []
        if not arg:
            return "", ""
        simple = _SIMPLE_PATH.match(arg)
        if simple is not None:
            # What every MTA sends: <dot-atom@domain> and maybe parameters. Same answer as
            # the parser below (tests/test_units.py checks it), for a tenth of the time.
            addr, rest = simple.group(1), simple.group(2)
        else:
            parsed = self._parse_path(arg)
            if parsed is None:
                return None, None
            addr, rest = parsed
        localpart = addr.rpartition("@")[0]
        if self.local_part_limit and len(localpart) > self.local_part_limit:
            return None, None
        # DSN parameters come off here, before aiosmtpd refuses every parameter it does not
        # know; the MAIL and RCPT hooks check them.
        rest, self.dsn_params = dsn.split_params(rest)
        return addr, rest

    @staticmethod
    def _parse_path(arg: str) -> tuple[str, str] | None:
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None
        return address.addr_spec, rest

    async def push(self, status_line: str | bytes) -> None:
        # The greeting and the LHLO capability lines go out as they are (RFC 2034 §3).
        if isinstance(status_line, str) and self._greeted and not self._lhlo_in_progress:
            lines = status_line.split("\r\n")
            status_line = "\r\n".join(status.with_enhanced_code(x) for x in lines)
        self._greeted = True
        await super().push(status_line)

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:
        self._lhlo_in_progress = True
        try:
            await super().smtp_LHLO(arg)
        finally:
            self._lhlo_in_progress = False
            self.command_size_limits.clear()

    # aiosmtpd's HELP lists only commands that carry their syntax.
    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        # The paths are copied into Return-Path:, Delivered-To: and Received:, where a CR
        # would start a header field of the sender's choosing; whatever the parser would make
        # of one, the command is refused. (An LF ends the command line before it gets here.)
        if arg and _PATH_BREAK.search(arg):
            await self.push(str(status.control_in_path()))
            return
        await super().smtp_MAIL(arg)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        if arg and _PATH_BREAK.search(arg):
            await self.push(str(status.control_in_path()))
            return
        await super().smtp_RCPT(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        envelope = self.envelope
        assert isinstance(envelope, LmtpEnvelope)
        if not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        handler: LmtpHandler = self.event_handler
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = handler.new_spool()
        delivery: asyncio.Task[list[status.Reply]] | None = None
        self.in_transaction = True
        try:
            reader = DataReader(spool, handler.config.lmtp.max_message_size)
            while self.transport is not None:
                # Up to the next ".CRLF" (whether it ends the data is for the reader to say),
                # or, when none is buffered, whatever is buffered: one step per received
                # chunk or per line ending in a dot, not per line. Nothing past the final dot
                # is consumed, so pipelined commands stay for the session.
                try:
                    piece = await self._reader.readuntil(b".\r\n")
                except asyncio.LimitOverrunError as error:
                    piece = await self._reader.read(error.consumed)
                except asyncio.IncompleteReadError:
                    return
                if reader.feed(piece):
                    break
            else:
                return
            tx = Transaction(
                sender="" if envelope.mail_from == "<>" else envelope.mail_from,
                recipients=list(envelope.recipients),
                body=spool,
                lhlo=(self.session.host_name if self.session else None) or "unknown",
                too_big=reader.too_big,
                spool_failed=reader.spool_error is not None,
                refused=list(envelope.refused),
            )
            delivery = handler.start_delivery(tx)
            delivery.add_done_callback(lambda _: spool.close())
            # Shielded: a timeout or a dropped connection must not cut a write half-way.
            replies = await asyncio.shield(delivery)
            self._set_post_data_state()
            await self.push("\r\n".join(str(r) for r in replies))
        finally:
            self.in_transaction = False
            if delivery is None:
                spool.close()


class LmtpHandler:
    def __init__(self, config: Config, deliverer: Deliverer) -> None:
        self.config = config
        self.deliverer = deliverer
        self._deliveries: set[asyncio.Task[list[status.Reply]]] = set()

    def new_spool(self) -> Spool:
        return Spool(self.config.lmtp.spool_threshold, self.config.store.root)

    def start_delivery(self, tx: Transaction) -> asyncio.Task[list[status.Reply]]:
        task = asyncio.get_running_loop().create_task(self.deliverer.deliver(tx))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return task

    async def drain(self) -> None:
        """Wait for deliveries in progress (used on SIGTERM)."""
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self.deliverer.drain()

    async def handle_EHLO(self, server: LmtpSession, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        extra = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-DSN"]
        return responses[:-1] + extra + [responses[-1]]

    async def handle_MAIL(self, server: LmtpSession, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        refusal = path_refusal(address, envelope.smtp_utf8)
        if refusal is None:
            try:
                # RET and ENVID are for the MTA, which sends any notification: checked only.
                dsn.mail_params(server.dsn_params)
            except dsn.Misplaced:
                refusal = status.unknown_parameters("MAIL FROM")
            except dsn.Malformed as error:
                refusal = status.bad_dsn_parameter(error.keyword)
        if refusal is not None:
            return str(refusal)
        # The null sender stays "<>" here (aiosmtpd reads an empty mail_from as "no MAIL yet").
        envelope.mail_from = address or "<>"
        envelope.mail_options.extend(mail_options)
        return str(status.sender_ok())

    async def handle_RCPT(self, server: LmtpSession, session: Session, envelope: LmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        refusal = path_refusal(address, envelope.smtp_utf8)
        if refusal is not None:
            return str(refusal)
        try:
            original = dsn.rcpt_params(server.dsn_params).original
        except dsn.Misplaced:
            return str(status.unknown_parameters("RCPT TO"))
        except dsn.Malformed as error:
            return str(status.bad_dsn_parameter(error.keyword))
        if len(envelope.rcpt_tos) >= self.config.lmtp.max_recipients:
            return str(status.too_many_recipients())
        try:
            refusal, recipient = await self.deliverer.check_rcpt(address)
        except Exception:
            log.exception("recipient check for %s failed", address)
            return str(status.temporary_failure())
        if refusal is not None:
            envelope.refused.append((address, refusal))
            metrics.refused_at_rcpt(refusal.enhanced)
            log.info(logs.event("rejected", rcpt=f"<{address}>", status=refusal.enhanced,
                                reason=refusal.text))
            return str(refusal)
        # X-Original-To: what the MTA says the sender wrote (before its alias expansion),
        # else the address as received, +detail and all.
        recipient.original = original or address
        envelope.rcpt_tos.append(address)
        envelope.recipients.append(recipient)
        return str(status.recipient_ok())

    async def handle_exception(self, error: Exception) -> str:
        log.exception("LMTP session error", exc_info=error)
        return str(status.temporary_failure())
