"""The LMTP wire: an aiosmtpd LMTP subclass and its handler. No delivery logic lives here.

aiosmtpd answers several DATA paths with a single line (size limit, long line, exceptions),
which desynchronises a client that waits for one reply per recipient. This module reads DATA
itself, streaming it into a Spool, and always answers one line per accepted recipient.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import Envelope, Session

from lmtpd import logs, metrics, status
from lmtpd.config import Config
from lmtpd.delivery import Deliverer, Recipient, Transaction
from lmtpd.spool import Spool

log = logging.getLogger("lmtpd.lmtp")

# RFC 5321 §4.5.3.1.6: 998 octets + CRLF, plus one for a transparency dot.
LINE_LIMIT = 1001
# A path in its plain form: <dot-atom@domain>, then the parameters after spaces.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"[ \t]*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*(.*)\Z",
    re.DOTALL)


class LmtpEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.recipients: list[Recipient] = []
        self.refused: list[tuple[str, status.Reply]] = []


class DataReader:
    """Sans-I/O assembly of the DATA section, one CRLF-terminated line at a time: removes
    transparency dots, turns CRLF into LF, notes an over-size message or an over-long line and
    stops keeping data then (so memory stays bounded), and says when the final dot came."""

    def __init__(self, spool: Spool, max_size: int) -> None:
        self.spool = spool
        self.max_size = max_size
        self.received = 0
        self.too_big = False
        self.line_too_long = False
        self.spool_error: OSError | None = None
        self._batch: list[bytes] = []
        self._batch_size = 0
        # feed(): the incomplete last line of what came so far, and whether it starts at the
        # beginning of a line (False after the head of an over-long line was dropped).
        self._pending = b""
        self._pending_at_line_start = True

    def feed(self, data: bytes) -> bool:
        """Raw DATA bytes in pieces of any size (the caller reads up to each `.CRLF`, so the
        final dot can only come at the end of a piece); True when the final dot came.

        Works on whole runs of lines with bytes methods (C loops) instead of one Python call
        per line: a 100 KB body is about 1,300 lines."""
        buf = self._pending + data if self._pending else data
        if buf.endswith(b".\r\n") and (
            buf.endswith(b"\r\n.\r\n") or (len(buf) == 3 and self._pending_at_line_start)
        ):
            self._pending = b""
            self._take_lines(buf[:-3])
            self._flush()
            return True
        end = buf.rfind(b"\r\n")
        if end < 0:
            complete, rest = b"", buf
        else:
            complete, rest = buf[: end + 2], buf[end + 2 :]
        self._take_lines(complete)
        if len(rest) - rest.endswith(b"\r") > LINE_LIMIT:  # a CR may be half of a CRLF
            # An over-long line: count it, keep nothing of it, and remember that what follows
            # is not at the start of a line (so its tail cannot be the final dot).
            # A trailing CR stays: it may be half of the CRLF that ends this line.
            keep = b"\r" if rest.endswith(b"\r") else b""
            self.received += len(rest) - len(keep)
            self._mark_line_too_long()
            self._pending = keep
            self._pending_at_line_start = False
        else:
            if not self._pending_at_line_start and complete:
                self._pending_at_line_start = True
            self._pending = rest
        return False

    def _take_lines(self, block: bytes) -> None:
        """Complete CRLF-terminated lines; the first one starts at the beginning of a line
        unless it is the tail of an over-long line."""
        if not block:
            return
        if not self._pending_at_line_start:
            # The tail of an over-long line whose head was counted and dropped already.
            cut = block.find(b"\r\n") + 2
            self.received += cut
            block = block[cut:]
            self._pending_at_line_start = True
        self.received += len(block)
        if self.max_size and self.received > self.max_size and not self.too_big:
            self.too_big = True
            self._batch.clear()
        if not block or self.too_big or self.line_too_long or self.spool_error:
            return
        if len(block) > LINE_LIMIT + 2 and _has_long_line(block):
            self._mark_line_too_long()
            return
        if block.startswith(b"."):
            block = block[1:]
        # Each CRLF ends a line here, so these replaces are exactly the per-line rules:
        # a leading transparency dot goes, and the CRLF becomes LF.
        block = block.replace(b"\r\n.", b"\r\n").replace(b"\r\n", b"\n")
        self._batch.append(block)
        self._batch_size += len(block)
        if self._batch_size >= 65536:
            self._flush()

    def _mark_line_too_long(self) -> None:
        self.line_too_long = True
        self._batch.clear()
        self._batch_size = 0

    def _flush(self) -> None:
        if self._batch and not (self.spool_error or self.too_big or self.line_too_long):
            try:
                self.spool.write(b"".join(self._batch))
            except OSError as error:
                # The spool's disk is full: keep reading to the final dot, then answer 451
                # for every recipient.
                log.error("spooling the message failed: %s", error)
                self.spool_error = error
        self._batch.clear()
        self._batch_size = 0


def _has_long_line(block: bytes) -> bool:
    """Whether a run of CRLF-terminated lines holds one longer than LINE_LIMIT.

    Splitting a 100 KB body into its ~1,300 lines to measure them cost more than the rest of
    reading it. Instead: if a CRLF starts in every aligned window of LINE_LIMIT // 2 octets,
    no line can be longer than LINE_LIMIT (a longer one would cover a whole window), which
    takes one C-level find per window; only a block that fails that is measured exactly."""
    step = LINE_LIMIT // 2
    find = block.find
    if all(find(b"\r\n", start, start + step + 1) >= 0
           for start in range(0, len(block) - step, step)):
        return False
    return max(map(len, block.split(b"\r\n"))) > LINE_LIMIT


class LmtpSession(LMTP):
    """aiosmtpd's LMTP with replies that always carry enhanced status codes and a DATA
    phase that answers once per recipient on every path."""

    # aiosmtpd gives the connection's StreamReader this limit, and asyncio pauses reading
    # the socket whenever more than twice the limit is buffered: at 1001 octets a 100 KB
    # body costs dozens of pause/resume round trips. Line lengths are still enforced: by
    # DataReader (LINE_LIMIT) in DATA, and by aiosmtpd's command size limit for commands.
    line_length_limit = 64 * 1024

    def __init__(self, handler: LmtpHandler, *,
                 on_close: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._on_close = on_close
        self._lhlo_in_progress = False
        self._greeted = False
        self.in_transaction = False

    def connection_lost(self, error: Exception | None) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        super().connection_lost(error)

    def _create_envelope(self) -> LmtpEnvelope:
        return LmtpEnvelope()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser for MAIL and RCPT, minus the typing.Protocol class it
        defines on every call (a class creation per command, measurable under load)."""
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

    async def smtp_LHLO(self, arg: str) -> None:
        self._lhlo_in_progress = True
        try:
            await super().smtp_LHLO(arg)
        finally:
            self._lhlo_in_progress = False

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
                line_too_long=reader.line_too_long,
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
        extra = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        return responses[:-1] + extra + [responses[-1]]

    async def handle_MAIL(self, server: LmtpSession, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        # The null sender stays "<>" here (aiosmtpd reads an empty mail_from as "no MAIL yet").
        envelope.mail_from = address or "<>"
        envelope.mail_options.extend(mail_options)
        return str(status.sender_ok())

    async def handle_RCPT(self, server: LmtpSession, session: Session, envelope: LmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
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
        envelope.rcpt_tos.append(address)
        envelope.recipients.append(recipient)
        return str(status.recipient_ok())

    async def handle_exception(self, error: Exception) -> str:
        log.exception("LMTP session error", exc_info=error)
        return str(status.temporary_failure())
