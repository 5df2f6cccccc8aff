"""DataReader.feed (whole pieces of the DATA stream) against a line-at-a-time reference
(RFC 5321 §4.5.2 applied line by line), over random messages cut at random points the way
the DATA loop cuts them."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmtpd.lmtp import LINE_LIMIT, DataReader, _has_long_line
from lmtpd.spool import Spool

LINES = [b"", b".", b"..", b"...x", b"a.", b"Subject: x", b"a\rb", b"a\nb", b"\r", b".\r",
         b"x" * 998, b"y" * LINE_LIMIT, b"z" * (LINE_LIMIT + 1), b"w" * 3000, b". .", b"\n."]


class LineReader:
    """The reference: one CRLF-terminated line at a time, as the rules are written."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.received = 0
        self.too_big = False
        self.line_too_long = False
        self.body = bytearray()
        self._fragment = False  # the previous piece was the head of an over-long line

    def feed_line(self, line: bytes) -> bool:
        """A complete line ending in CRLF; True when it was the final dot."""
        if line == b".\r\n" and not self._fragment:
            return True
        self._fragment = False
        self.received += len(line)
        if self.max_size and self.received > self.max_size:
            self.too_big = True
        if not (self.too_big or self.line_too_long):
            self.body += (line[1:] if line.startswith(b".") else line)[:-2] + b"\n"
        return False

    def feed_overlong(self, piece: bytes) -> None:
        """The head of a line longer than the limit (no CRLF yet)."""
        self.received += len(piece)
        self.line_too_long = True
        self._fragment = True


def by_lines(stream: bytes, max_size: int) -> tuple[bytes, LineReader, bool]:
    """The old DATA loop: readuntil CRLF with the stream's line limit."""
    reader = LineReader(max_size)
    pos = 0
    while pos < len(stream):
        end = stream.find(b"\r\n", pos)
        if end < 0:
            return bytes(reader.body), reader, False
        if end - pos > LINE_LIMIT:
            reader.feed_overlong(stream[pos:end])
            pos = end
            continue
        if reader.feed_line(stream[pos:end + 2]):
            return bytes(reader.body), reader, True
        pos = end + 2
    return bytes(reader.body), reader, False


def by_pieces(stream: bytes, max_size: int, rng: random.Random) -> tuple[bytes, DataReader, bool]:
    """Pieces as readuntil(b".\\r\\n") / read(consumed) hand them out."""
    reader = DataReader(Spool(1 << 30), max_size)
    pos = 0
    while pos < len(stream):
        window = rng.choice([1, 2, 3, 5, 17, 1001, 4096, 1 << 20])
        found = stream.find(b".\r\n", pos)
        if found >= 0 and found + 3 - pos <= window + 3:
            piece = stream[pos:found + 3]
        else:
            piece = stream[pos:pos + window]
            if found >= 0 and pos + window > found:
                piece = stream[pos:found]
            if not piece:
                piece = stream[pos:found + 3]
        pos += len(piece)
        if reader.feed(piece):
            return reader.spool.getvalue(), reader, True
    return reader.spool.getvalue(), reader, False


@pytest.mark.parametrize("seed", range(300))
def test_feed_matches_the_line_at_a_time_reference(seed: int) -> None:
    rng = random.Random(seed)
    lines = [rng.choice(LINES) for _ in range(rng.randint(0, 12))]
    stream = b"".join(line + b"\r\n" for line in lines) + b".\r\n" + b"QUIT\r\n"
    max_size = rng.choice([0, 0, 50, 2000])
    want, ref, ref_done = by_lines(stream, max_size)
    got, new, new_done = by_pieces(stream, max_size, rng)
    assert new_done == ref_done
    # Too big decides the reply first, so whether a long line was also noted then is moot.
    assert new.too_big == ref.too_big
    if not ref.too_big:
        assert new.line_too_long == ref.line_too_long
    if not (ref.too_big or ref.line_too_long):
        assert got == want
    assert new.received == ref.received


# Line lengths around the limit and around the check's window (LINE_LIMIT // 2), with the odd
# bare CR or LF inside a line, which do not end it.
_line = st.builds(
    lambda n, noise: (b"x" * n if not noise else (b"x" * (n // 2) + noise + b"x" * (n - n // 2))
                      ).replace(b"\r\n", b"\rx"),
    st.sampled_from([0, 1, 77, 499, 500, 501, 502, 999, 1000, 1001, 1002, 1003, 1500, 2600]),
    st.sampled_from([b"", b"\r", b"\n", b"\n\r"]),
)


@given(st.lists(_line, min_size=1, max_size=10))
def test_long_line_check_agrees_with_measuring_every_line(lines: list[bytes]) -> None:
    block = b"\r\n".join(lines) + b"\r\n"
    assert _has_long_line(block) == (max(map(len, block.split(b"\r\n"))) > LINE_LIMIT)
