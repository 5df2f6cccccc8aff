"""MessageEncoder: CRLF and dot-stuffing across arbitrary chunk boundaries, TOP cut-off."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmtpd.pop3.protocol import MessageEncoder
from lmtpd.spool import Spool
from lmtpd.store.maildir import crlf_size_file, crlf_size_of


def reference(data: bytes, body_lines: int | None = None) -> bytes:
    """The wire form built the slow, obvious way: whole message, line by line."""
    lines = data.split(b"\n")
    ended = data.endswith(b"\n")
    if ended or not data:
        lines = lines[:-1]
    if body_lines is not None:
        kept = []
        in_header = True
        count = 0
        for line in lines:
            if not in_header and count >= body_lines:
                break
            kept.append(line)
            if in_header:
                if line in (b"", b"\r"):
                    in_header = False
            else:
                count += 1
        if len(kept) < len(lines):
            lines, ended = kept, True
    out = []
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        if line.startswith(b"."):
            line = b"." + line
        if last and not ended:
            # No final line end: one is added (a bare CR at the end just gets its LF).
            out.append(line + (b"\n" if line.endswith(b"\r") else b"\r\n"))
        else:
            out.append(line.removesuffix(b"\r") + b"\r\n")
    return b"".join(out) + b".\r\n"


def encode(data: bytes, cuts: list[int], body_lines: int | None = None) -> bytes:
    encoder = MessageEncoder(body_lines)
    pieces = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        pieces.append(encoder.feed(data[start:cut]))
        start = cut
        if encoder.done:
            break
    return b"".join(pieces) + encoder.finish()


def unstuffed_octets(wire: bytes) -> int:
    """What a client counts: the transfer without the final dot and without stuffing."""
    body = wire[: -len(b".\r\n")]
    return len(body) - len(re.findall(rb"(?:^|\n)\.", body))


def test_lf_becomes_crlf_and_dots_are_stuffed() -> None:
    data = b"Subject: x\n\n.leading\n..two\n.\nend\n"
    assert encode(data, []) == b"Subject: x\r\n\r\n..leading\r\n...two\r\n..\r\nend\r\n.\r\n"


def test_existing_crlf_is_kept() -> None:
    assert encode(b"a\r\nb\n", []) == b"a\r\nb\r\n.\r\n"


def test_crlf_split_across_chunks() -> None:
    assert encode(b"a\r\nb\r\n", [1, 2]) == b"a\r\nb\r\n.\r\n"


def test_dot_at_chunk_start() -> None:
    assert encode(b"a\n.b\n", [2]) == b"a\r\n..b\r\n.\r\n"
    assert encode(b".a\n", [0, 1]) == b"..a\r\n.\r\n"


def test_missing_final_newline_is_added() -> None:
    assert encode(b"a\nb", []) == b"a\r\nb\r\n.\r\n"
    assert encode(b"", []) == b".\r\n"


def test_size_matches_crlf_size_for_messages_ending_in_lf() -> None:
    data = b"H: v\n\n.x\r\ny\n\n..\n"
    wire = encode(data, [3, 7])
    assert unstuffed_octets(wire) == crlf_size_of(data)


def test_size_counts_the_line_end_added_to_a_message_without_one() -> None:
    for data, added in ((b"H: v\n\nno newline", 2), (b"H: v\n\nbare cr\r", 1), (b"", 0)):
        wire = encode(data, [])
        assert unstuffed_octets(wire) == crlf_size_of(data)
        assert crlf_size_of(data) == len(data) + data.count(b"\n") + added


def test_top_zero_stops_after_the_blank_line() -> None:
    data = b"A: 1\nB: 2\n\nline1\nline2\n"
    assert encode(data, [], 0) == b"A: 1\r\nB: 2\r\n\r\n.\r\n"


def test_top_counts_body_lines() -> None:
    data = b"A: 1\r\n\r\n1\n2\n3\n4\n5\n6\n7\n"
    assert encode(data, [], 5) == b"A: 1\r\n\r\n1\r\n2\r\n3\r\n4\r\n5\r\n.\r\n"
    assert encode(data, [], 50) == encode(data, [])


def test_top_blank_line_split_across_chunks() -> None:
    data = b"A: 1\r\n\r\nbody\n"
    for cut in range(len(data)):
        assert encode(data, [cut], 0) == b"A: 1\r\n\r\n.\r\n", cut


def test_top_on_message_without_body() -> None:
    assert encode(b"A: 1\nB: 2\n", [], 3) == b"A: 1\r\nB: 2\r\n.\r\n"


def test_top_marks_done_so_reading_can_stop() -> None:
    encoder = MessageEncoder(1)
    encoder.feed(b"A: 1\n\nx\ny\n")
    assert encoder.done
    assert encoder.feed(b"more\n") == b""


message_bytes = st.lists(
    st.sampled_from([b"a", b"b", b".", b"\n", b"\r", b"\r\n", b"..", b" ", b"H: v"]),
    max_size=60,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(message_bytes, st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_matches_reference_for_any_chunking(data: bytes, cuts: list[int]) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    assert encode(data, cuts) == reference(data)
    assert unstuffed_octets(encode(data, cuts)) == crlf_size_of(data)


@settings(max_examples=200, deadline=None)
@given(message_bytes, st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_every_size_computation_agrees(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                       cuts: list[int]) -> None:
    """Written from a spool (delivery), measured from a file (reindex, verify, import): the
    same POP3 size, the octets RETR sends."""
    path = tmp_path_factory.mktemp("size") / "message"
    path.write_bytes(data)
    spool = Spool(1 << 20)
    start = 0
    for cut in [*sorted({c for c in cuts if c <= len(data)}), len(data)]:
        spool.write(data[start:cut])
        start = cut
    assert crlf_size_file(path) == crlf_size_of(data)
    assert Spool.from_bytes(data).crlf_size() == crlf_size_of(data)
    if b"\r" not in data:  # the spool's count of a CR split across writes is documented
        assert spool.crlf_size() == crlf_size_of(data)


@settings(max_examples=400, deadline=None)
@given(message_bytes, st.lists(st.integers(min_value=0, max_value=200), max_size=6),
       st.integers(min_value=0, max_value=5))
def test_top_matches_reference_for_any_chunking(data: bytes, cuts: list[int], n: int) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    assert encode(data, cuts, n) == reference(data, n)
