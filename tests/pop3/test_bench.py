"""Acceptance 7 in small: the benchmark runs (so it cannot rot), and a 50 MB RETR keeps the
server's resident memory growth under 20 MB. The 20,000-message timing is the benchmark's
job (`.venv/bin/python bench/pop3_bench.py`), not a timed test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pop3_bench.py"


def test_bench_smoke_and_50mb_retr_memory() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--messages", "200", "--big-mb", "50", "--rounds", "1",
         "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["failures"] == []
    assert report["messages"] == 200
    retr = report["retr"]
    assert retr["size_mb"] > 50
    assert retr["received_mb"] >= retr["size_mb"]
    assert retr["rss_growth_mb"] < 20
