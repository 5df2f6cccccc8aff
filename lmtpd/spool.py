"""A received message body: in memory while small, in an unlinked temporary file past a
threshold, so a 50 MB message does not cost 50 MB (or twice that) of memory.

The body is kept as it will be stored: dot-unstuffed, line ends as LF.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lmtpd.store.maildir import missing_line_end

HEADER_LIMIT = 256 * 1024
_READ_CHUNK = 1024 * 1024


class Spool:
    def __init__(self, threshold: int, directory: Path | None = None) -> None:
        self.threshold = threshold
        self.directory = directory
        self.size = 0
        self._buffer = bytearray()
        self._file: int | None = None
        self._lf_count = 0
        self._crlf_count = 0
        self._head = bytearray()
        self._last = b""  # the body's last octet, for its POP3 size
        self._frozen: bytes | None = None  # the buffer as bytes, made once for all copies

    @classmethod
    def from_bytes(cls, data: bytes, threshold: int = 1 << 62) -> Spool:
        spool = cls(threshold)
        spool.write(data)
        return spool

    def write(self, data: bytes | bytearray) -> None:
        if not data:
            return
        self._lf_count += data.count(b"\n")
        # After the CRLF->LF conversion of DATA a CR is rare: a quick look for one spares
        # a second full count.
        if b"\r" in data:
            self._crlf_count += data.count(b"\r\n")
        self._frozen = None
        self._last = data[-1:]
        if len(self._head) < HEADER_LIMIT:
            self._head += data[: HEADER_LIMIT - len(self._head)]
        self.size += len(data)
        if self._file is None:
            self._buffer += data
            if len(self._buffer) > self.threshold:
                self._spill()
        else:
            _write_fd(self._file, data)

    def _spill(self) -> None:
        fd, name = tempfile.mkstemp(prefix="lmtpd-spool-", dir=self.directory)
        os.unlink(name)  # nothing to clean up after a crash
        self._file = fd
        _write_fd(fd, self._buffer)
        self._buffer = bytearray()

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def fileno(self) -> int | None:
        return self._file

    def chunks(self) -> Iterator[bytes]:
        if self._file is None:
            if self._frozen is None:
                self._frozen = bytes(self._buffer)
            yield self._frozen
            return
        offset = 0
        while offset < self.size:
            chunk = os.pread(self._file, min(_READ_CHUNK, self.size - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            yield chunk

    def getvalue(self) -> bytes:
        return b"".join(self.chunks())

    def header_bytes(self) -> bytes:
        """The header section (up to the first empty line), at most HEADER_LIMIT bytes."""
        head = bytes(self._head)
        end = head.find(b"\n\n")
        if head.startswith(b"\n"):
            return b""
        return head[: end + 1] if end >= 0 else head

    def crlf_size(self) -> int:
        """The octets POP3 RETR sends for the body (see maildir.crlf_size_of).

        A CR split across two writes is not counted as CRLF: LMTP input never has CR left
        after the CRLF->LF conversion, so this only matters for odd imported data."""
        return (self.size + self._lf_count - self._crlf_count
                + missing_line_end(self._last))

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None
        self._buffer = bytearray()
        self._frozen = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_fd(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
