"""Hostile scripts are refused at compile time or contained at run time, quickly."""

from __future__ import annotations

import time

import pytest

from lmtpd.sieve import (
    Envelope,
    FileInto,
    MessageContext,
    SieveLimits,
    SieveSyntaxError,
    compile,
    evaluate,
)

MSG = MessageContext.from_bytes(
    b"From: a@example.com\nTo: user@example.org\nSubject: " + b"a" * 2000 + b"\n\nbody\n"
)
ENV = Envelope("a@example.com", "user@example.org", "user@example.org")
FALLBACK = [FileInto("INBOX", ())]


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.start


def test_thousand_nested_ifs_are_refused_quickly() -> None:
    text = "if true {" * 1000 + "keep;" + "}" * 1000
    with Timer() as t, pytest.raises(SieveSyntaxError, match="nesting") as info:
        compile(text)
    assert t.elapsed < 1.0
    # the 33rd level is the test of the 33rd if
    assert (info.value.line, info.value.column) == (1, 9 * 32 + 4)


def test_thousand_nested_nots_are_refused() -> None:
    with pytest.raises(SieveSyntaxError, match="nesting"):
        compile("if " + "not " * 1000 + "true { keep; }")
    with pytest.raises(SieveSyntaxError, match="nesting"):
        compile("if " + "anyof(" * 1000 + "true" + ")" * 1000 + " { keep; }")


def test_nesting_limit_is_configurable_and_32_by_default() -> None:
    compile("if true {" * 32 + "keep;" + "}" * 32)
    with pytest.raises(SieveSyntaxError):
        compile("if true {" * 33 + "keep;" + "}" * 33)
    with pytest.raises(SieveSyntaxError):
        compile("if true {" * 5 + "keep;" + "}" * 5, SieveLimits(max_nesting=4))


def test_one_megabyte_string_is_refused_by_the_size_limit() -> None:
    text = 'require "reject"; reject "' + "x" * (1 << 20) + '";'
    with Timer() as t, pytest.raises(SieveSyntaxError, match="larger than"):
        compile(text)
    assert t.elapsed < 1.0


def test_string_just_under_the_limit_parses_and_runs() -> None:
    text = 'if header :contains "subject" "' + "a" * 900_000 + '" { discard; }'
    with Timer() as t:
        result = evaluate(compile(text), MSG, ENV)
    assert t.elapsed < 2.0
    assert result.actions == FALLBACK and not result.errors


def test_ten_thousand_fileinto_actions_are_contained() -> None:
    text = 'require "fileinto";\n' + "".join(f'fileinto "f{i}";\n' for i in range(10_000))
    script = compile(text)
    with Timer() as t:
        result = evaluate(script, MSG, ENV)
    assert t.elapsed < 1.0
    assert result.actions == FALLBACK
    assert result.errors and "actions" in result.errors[0]


def test_ten_thousand_fileinto_one_folder_store_once() -> None:
    script = compile('require "fileinto";\n' + 'fileinto "same";\n' * 10_000)
    result = evaluate(script, MSG, ENV)
    assert result.actions == [FileInto("same", ())]


def test_variable_doubling_blowup_is_contained() -> None:
    text = 'require "variables"; set "a" "xxxxxxxx";\n' + 'set "a" "${a}${a}";\n' * 60
    with Timer() as t:
        result = evaluate(compile(text), MSG, ENV)
    assert t.elapsed < 1.0
    assert result.actions == FALLBACK
    assert "variable 'a'" in result.errors[0]


def test_expansion_blowup_outside_set_is_contained() -> None:
    refs = "${a}" * 200_000
    text = f'require ["variables", "fileinto"]; set "a" "{"y" * 4000}"; fileinto "{refs}";'
    with Timer() as t:
        result = evaluate(compile(text), MSG, ENV)
    assert t.elapsed < 2.0
    assert result.actions == FALLBACK and "expanded string" in result.errors[0]


def test_too_many_variables() -> None:
    text = 'require "variables";' + "".join(f'set "v{i}" "x";' for i in range(300))
    result = evaluate(compile(text), MSG, ENV)
    assert result.actions == FALLBACK and "variables" in result.errors[0]


def test_slow_script_is_stopped_by_the_clock() -> None:
    # every test is a worst-case glob over a 2,000 character subject
    body = 'if header :matches "subject" "*a*a*a*a*a*a*a*b" { discard; }\n' * 5000
    limits = SieveLimits(max_cpu_seconds=0.2)
    with Timer() as t:
        result = evaluate(compile(body), MSG, ENV, limits=limits)
    assert t.elapsed < 1.5
    assert result.actions == FALLBACK
    assert "longer than" in result.errors[0]


def test_step_limit() -> None:
    script = compile("if true { }\n" * 2000)
    result = evaluate(script, MSG, ENV, limits=SieveLimits(max_steps=1000))
    assert result.actions == FALLBACK and "steps" in result.errors[0]


def test_redirect_limit() -> None:
    text = "".join(f'redirect "r{i}@example.net";' for i in range(5))
    result = evaluate(compile(text), MSG, ENV)
    assert result.actions == FALLBACK and "redirect" in result.errors[0]
    result = evaluate(compile(text), MSG, ENV, limits=SieveLimits(max_redirects=5))
    assert not result.errors and len(result.actions) == 5


def test_glob_is_linear_on_pathological_patterns() -> None:
    from lmtpd.sieve.match import OCTET, glob_match

    with Timer() as t:
        assert glob_match("*a" * 50 + "*b", "a" * 20_000, OCTET.fold) is None
    assert t.elapsed < 3.0


def _evil_regex_run() -> list[str]:
    # (a|aa)*$ against 40 a's and a b takes a backtracking matcher 2**40 steps
    msg = MessageContext.from_bytes(b"Subject: " + b"a" * 40 + b"b\n\nbody\n")
    text = 'require ["regex", "fileinto"]; if header :regex "subject" "(a|aa)*$" { discard; }'
    result = evaluate(compile(text), msg, ENV, limits=SieveLimits(max_cpu_seconds=0.2))
    assert result.actions == FALLBACK
    return result.errors


def test_catastrophic_regex_is_stopped_by_the_clock() -> None:
    # in a child process, so that a matcher without a timeout fails the test instead of hanging it
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        errors = pool.submit(_evil_regex_run).result(timeout=60)
    assert "ran out of time" in errors[0]
