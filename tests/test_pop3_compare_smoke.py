"""The POP3 comparison with tiny counts, so the bench code cannot rot unnoticed: it fills the
stores, drives every kind of cell, checks every RETR against LIST and renders the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import pop3_compare  # noqa: E402 (lives in bench/, not in a package)


def test_lmtpd_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = pop3_compare.main(["--smoke", "--no-dovecot", "--workdir", str(tmp_path),
                              "--json", str(tmp_path / "results.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| 2 KB, c=1 |" in out and "| 100 KB, c=2 |" in out
    assert "Dovecot MB/s" not in out
    assert "- lmtpd: first" in out
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    # 3 mailboxes x 10 messages in each of 2 sizes x 2 concurrencies.
    assert [r["messages"] for r in runs] == [30] * 4


def test_with_dovecot(capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("dovecot")
    if not pop3_compare.pop3_available():
        require_tool("/usr/lib/dovecot/pop3")
    # No --workdir: pytest's tmp_path sits under a 0700 directory that Dovecot's auth and
    # mail processes (its service users) cannot traverse; the bench's own temp dir can be.
    code = pop3_compare.main(["--smoke"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| cell | lmtpd msg/s | lmtpd MB/s | Dovecot msg/s |" in out
    row = next(line for line in out.splitlines() if line.startswith("| 100 KB, c=2 |"))
    assert "-" not in row.replace("| 100 KB, c=2 |", "")
    assert "- dovecot: first" in out


def test_body_and_sizes() -> None:
    body = pop3_compare.make_body(2048)
    assert len(body) == 2048 and body.endswith(b"\n") and body.startswith(b".")
    message = pop3_compare.make_message(body, "a@example.org", 1)
    assert pop3_compare.crlf_size(message) == len(message) + message.count(b"\n")
