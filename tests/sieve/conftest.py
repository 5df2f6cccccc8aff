"""Fixtures for the Sieve tests: the sieve-test oracle, run once for every case."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from sieve_cases import CASES
from sieve_oracle import available, run_oracle


def require_sieve_test() -> None:
    """Skip without sieve-test locally; on CI its absence is a failure, never a skip."""
    if available():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("sieve-test (dovecot-sieve) is required on CI but is not installed")
    pytest.skip("sieve-test (dovecot-sieve) is not installed")


@pytest.fixture(scope="session")
def oracle_results() -> dict[str, tuple[str, tuple, str]]:
    require_sieve_test()
    workers = max(2, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run_oracle, CASES))
    return {case.id: res for case, res in zip(CASES, results, strict=True)}
