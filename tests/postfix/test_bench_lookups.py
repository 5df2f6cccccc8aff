"""The Postfix lookups benchmark with tiny counts, so its code cannot rot unnoticed: it starts
lmtpd with both services, drives Postfix's postmap and its own clients, renders the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import postfix_lookups_bench  # noqa: E402 (lives in bench/, not in a package)


def test_lookups_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("postmap")
    code = postfix_lookups_bench.main([
        "--mailboxes", "30", "--lookups", "200", "--rounds", "1", "--per-process", "5",
        "--concurrency", "1,2", "--min-rate", "1", "--json", str(tmp_path / "out.json"),
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    for row in ("| socketmap, postmap -q - |", "| hash:, postmap -q - |",
                "| policy, Python client |", "| socketmap, Python client |",
                "| hash:, one postmap -q per lookup |"):
        assert row in out, out
    results = json.loads((tmp_path / "out.json").read_text())
    assert all(rate > 0 for rates in results.values() for rate in rates.values())


def test_keys_mix_known_and_unknown_addresses(tmp_path: Path) -> None:
    require_tool("postmap")
    setup = postfix_lookups_bench.Setup(tmp_path, 20)
    keys = set(setup.keys)
    assert "user0@bench.example" in keys and "list0@bench.example" in keys
    assert "user1+news@bench.example" in keys and "nobody0@bench.example" in keys
