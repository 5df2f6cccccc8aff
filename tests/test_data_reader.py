"""DataReader.feed (whole pieces of the DATA stream) against a line-at-a-time reference
(RFC 5321 §4.5.2 applied line by line), over random messages cut at random points the way
the DATA loop cuts them, with lines of any length."""

from __future__ import annotations

import random

import pytest

from lmtpd.data_reader import CARRY_LIMIT, DataReader
from lmtpd.spool import Spool

LINES = [b"", b".", b"..", b"...x", b"a.", b"Subject: x", b"a\rb", b"a\nb", b"\r", b".\r",
         b"x" * 998, b"y" * 1001, b"z" * 1002, b"w" * 3000, b". .", b"\n.",
         b"." + b"v" * CARRY_LIMIT, b"u" * (CARRY_LIMIT - 1) + b"\r", b"t" * 70_000 + b".",
         b"." * (CARRY_LIMIT + 5), b"." * 5000]


class LineReader:
    """The reference: one CRLF-terminated line at a time, as the rules are written."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.received = 0
        self.too_big = False
        self.body = bytearray()

    def feed_line(self, line: bytes) -> bool:
        """A complete line ending in CRLF; True when it was the final dot."""
        if line == b".\r\n":
            return True
        self.received += len(line)
        if self.max_size and self.received > self.max_size:
            self.too_big = True
        if not self.too_big:
            self.body += (line[1:] if line.startswith(b".") else line)[:-2] + b"\n"
        return False


def by_lines(stream: bytes, max_size: int) -> tuple[bytes, LineReader, bool]:
    reader = LineReader(max_size)
    pos = 0
    while pos < len(stream):
        end = stream.find(b"\r\n", pos)
        if end < 0:
            return bytes(reader.body), reader, False
        if reader.feed_line(stream[pos:end + 2]):
            return bytes(reader.body), reader, True
        pos = end + 2
    return bytes(reader.body), reader, False


def by_pieces(stream: bytes, max_size: int, rng: random.Random) -> tuple[bytes, DataReader, bool]:
    """Pieces as readuntil(b".\\r\\n") / read(consumed) hand them out."""
    reader = DataReader(Spool(1 << 30), max_size)
    pos = 0
    while pos < len(stream):
        window = rng.choice([1, 2, 3, 5, 17, 1001, 4096, 65536, 1 << 20])
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
    max_size = rng.choice([0, 0, 50, 2000, 80_000])
    want, ref, ref_done = by_lines(stream, max_size)
    got, new, new_done = by_pieces(stream, max_size, rng)
    assert new_done == ref_done
    assert new.too_big == ref.too_big
    if not ref.too_big:
        assert got == want
    assert new.received == ref.received


def test_a_long_line_is_passed_on_before_its_end_arrives() -> None:
    """Memory stays bounded: what the reader holds back of a 2,000,000-octet line is at most
    one batch and the carried tail, however much of the line came."""
    spool = Spool(1 << 30)
    reader = DataReader(spool, 0)
    assert not reader.feed(b"Subject: long\r\n\r\n")
    piece = b"h" * 65536
    for _ in range(30):
        assert not reader.feed(piece)
        assert reader.received - spool.size <= 65536 + CARRY_LIMIT
    assert not reader.feed(b"h" * (2_000_000 - 30 * 65536) + b"\r\n")
    assert reader.feed(b".\r\n")
    assert spool.getvalue() == b"Subject: long\n\n" + b"h" * 2_000_000 + b"\n"


def test_the_tail_of_a_long_line_is_not_the_final_dot() -> None:
    spool = Spool(1 << 20)
    reader = DataReader(spool, 0)
    assert reader.feed(b"." + b"y" * 2000) is False
    assert reader.feed(b".\r\n") is False  # the tail of the long line, not the end
    assert reader.feed(b".\r\n") is True
    assert spool.getvalue() == b"y" * 2000 + b".\n"
