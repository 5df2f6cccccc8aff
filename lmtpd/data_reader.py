"""Sans-I/O assembly of an LMTP DATA section into a Spool (RFC 5321 §4.5.2, RFC 2033 §4.2).

Bytes go in as the connection hands them out; the message comes out dot-unstuffed with LF line
ends, and `feed` says when the final dot came. Lines may be of any length: only the size limit
bounds a message, and memory stays bounded however long a line is, because the head of a long
line is passed on before its end has arrived.
"""

from __future__ import annotations

import logging

from lmtpd.spool import Spool

log = logging.getLogger("lmtpd.lmtp")

# An incomplete line longer than this is passed on at once instead of being kept until its
# end arrives. Ordinary mail (lines under 1,000 octets) never reaches it, so the usual path
# keeps whole lines together; any value over 2 would be correct.
CARRY_LIMIT = 1024
# Unstuffed bytes gathered before one Spool.write.
_BATCH = 65536


class DataReader:
    """One DATA section: removes transparency dots, turns CRLF into LF, notes an over-size
    message (and stops keeping data then, so memory stays bounded), and says when the final
    dot came."""

    def __init__(self, spool: Spool, max_size: int) -> None:
        self.spool = spool
        self.max_size = max_size
        self.received = 0
        self.too_big = False
        self.spool_error: OSError | None = None
        self._batch: list[bytes] = []
        self._batch_size = 0
        # The incomplete last line of what came so far (at most CARRY_LIMIT octets, or a lone
        # CR that may be half of a CRLF), and whether it starts at the beginning of a line
        # (False once the head of a long line was passed on).
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
            self._take_lines(buf[:-3], self._pending_at_line_start)
            self._flush()
            return True
        end = buf.rfind(b"\r\n")
        if end < 0:
            complete, rest = b"", buf
        else:
            complete, rest = buf[: end + 2], buf[end + 2 :]
        if complete:
            self._take_lines(complete, self._pending_at_line_start)
            self._pending_at_line_start = True
        if len(rest) > CARRY_LIMIT:
            self._pass_on_head(rest)
        else:
            self._pending = rest
        return False

    def _pass_on_head(self, rest: bytes) -> None:
        """The head of a long line, without its CRLF: store it now. A trailing CR stays, as it
        may be half of the CRLF that ends the line; what follows is not at a line start, so
        neither a transparency dot nor the final dot can come next."""
        keep = b"\r" if rest.endswith(b"\r") else b""
        head = rest[: len(rest) - len(keep)]
        self.received += len(head)
        if self._pending_at_line_start and head.startswith(b"."):
            head = head[1:]
        self._pending = keep
        self._pending_at_line_start = False
        self._keep(head)

    def _take_lines(self, block: bytes, at_line_start: bool) -> None:
        """CRLF-terminated lines; the first one is the tail of a long line unless
        `at_line_start`."""
        if not block:
            return
        self.received += len(block)
        if at_line_start and block.startswith(b"."):
            block = block[1:]
        # Each CRLF ends a line here, so these replaces are exactly the per-line rules:
        # a leading transparency dot goes, and the CRLF becomes LF.
        self._keep(block.replace(b"\r\n.", b"\r\n").replace(b"\r\n", b"\n"))

    def _keep(self, unstuffed: bytes) -> None:
        if self.max_size and self.received > self.max_size and not self.too_big:
            self.too_big = True
            self._batch.clear()
            self._batch_size = 0
        if not unstuffed or self.too_big or self.spool_error:
            return
        self._batch.append(unstuffed)
        self._batch_size += len(unstuffed)
        if self._batch_size >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch and not (self.spool_error or self.too_big):
            try:
                self.spool.write(b"".join(self._batch))
            except OSError as error:
                # The spool's disk is full: keep reading to the final dot, then answer 451
                # for every recipient.
                log.error("spooling the message failed: %s", error)
                self.spool_error = error
        self._batch.clear()
        self._batch_size = 0
