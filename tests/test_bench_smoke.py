"""The LMTP benchmark with tiny counts and no Dovecot, so the bench code cannot rot unnoticed:
it starts lmtpd, drives every kind of cell, counts the files on disk and renders the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import lmtp_bench  # noqa: E402 (lives in bench/, not in a package)


def test_lmtp_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = lmtp_bench.main([
        "--messages", "12", "--latency-messages", "6", "--concurrency", "1,4",
        "--sizes", "2k,100k", "--rcpts", "1,3", "--growth", "20", "--growth-chunk", "10",
        "--memory-mb", "2", "--workdir", str(tmp_path),
        "--json", str(tmp_path / "results.json"),
    ])
    out = capsys.readouterr().out
    assert code == 0
    assert "| 2 KB, 1 rcpt, c=1 |" in out
    assert "| 100 KB, 3 rcpts, c=4 | python |" in out
    assert "Mailbox growth" in out and "lmtpd: " in out
    assert "Peak RSS" in out
    assert (tmp_path / "results.json").exists()


def test_python_driver_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = lmtp_bench.main([
        "--messages", "8", "--concurrency", "2", "--sizes", "2k", "--rcpts", "1",
        "--growth", "0", "--memory-mb", "0", "--no-smtp-source", "--workdir", str(tmp_path),
    ])
    assert code == 0
    assert "| 2 KB, 1 rcpt, c=2 | python |" in capsys.readouterr().out


def test_body_is_wire_safe() -> None:
    body = lmtp_bench.make_body(100 * 1024)
    assert len(body) == 100 * 1024
    assert body.endswith(b"\r\n")
    assert all(not line.startswith(b".") and len(line) <= 998 for line in body.split(b"\r\n"))


def test_quota_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    import quota_bench

    code = quota_bench.main(["--rows", "2000", "--messages", "20", "--rounds", "1",
                             "--concurrency", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "the large mailbox holds 2000 messages" in out
    assert "| 1 |" in out
