"""Our engine against Pigeonhole's sieve-test on the same scripts and messages."""

from __future__ import annotations

import pytest
from sieve_cases import CASES
from sieve_oracle import ENVIRONMENT, Case, CaseScripts, envelope_of, normalize_ours

from lmtpd.sieve import MessageContext, SieveSyntaxError, compile, evaluate


def test_enough_cases() -> None:
    assert len(CASES) >= 500
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_agrees_with_sieve_test(case: Case, oracle_results: dict) -> None:
    kind, expected, raw = oracle_results[case.id]
    if case.expect_compile_error:
        assert kind == "compile", f"sieve-test accepted a script we expect refused:\n{raw}"
    try:
        script = compile(case.script, loader=CaseScripts(case))
    except SieveSyntaxError as e:
        assert kind == "compile", f"we refused ({e}) but sieve-test ran it:\n{raw}"
        return
    assert kind != "compile", f"sieve-test refused a script we accept:\n{raw}"
    msg = MessageContext.from_bytes(case.message)
    folders = set(case.folders) | {"INBOX"}
    result = evaluate(script, msg, envelope_of(case), mailbox_exists=lambda f: f in folders,
                      environment=ENVIRONMENT)
    our_kind, ours = normalize_ours(case, result, msg)
    assert (our_kind, ours) == (kind, expected), (
        f"\nours:   {our_kind} {ours} {result.errors}\noracle: {kind} {expected}\n{raw}"
    )
