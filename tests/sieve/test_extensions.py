"""What the differential suite cannot show: the interfaces delivery calls (duplicate memory,
edited message, includes and their loader, environment, time), and the places where lmtpd
follows the RFCs where Pigeonhole 0.5.19 does not."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from lmtpd.sieve import (
    SUPPORTED_EXTENSIONS,
    DuplicateMark,
    Envelope,
    FileInto,
    MessageContext,
    Redirect,
    SieveLimits,
    SieveResult,
    SieveSyntaxError,
    compile,
    evaluate,
    run_scripts,
    up_to_date,
)
from lmtpd.sieve.ext.duplicate import duplicate_key

RAW = (
    b"Received: from a by b; Mon, 06 May 2024 10:00:00 +0200\n"
    b"Received: from c by a; Mon, 06 May 2024 09:00:00 -0700\n"
    b"From: Sender <sender@example.com>\nTo: user@example.org\nSubject: hello\n"
    b"Message-ID: <m-1@example.com>\n\nHi\n"
)
MULTIPART = (
    b"From: a@example.com\nSubject: parts\nMIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="o"\n\n'
    b'--o\nContent-Type: multipart/alternative; boundary="i"\n\n'
    b"--i\nContent-Type: text/plain\n\nplain\n--i\nContent-Type: text/html\n\n<p>html</p>\n"
    b"--i--\n--o\nContent-Type: application/pdf\n\n%PDF\n--o--\n"
)
ENV = Envelope("sender@example.com", "user@example.org", "user@example.org")


def run(text: str, raw: bytes = RAW, **options: object) -> SieveResult:
    return evaluate(compile(text, loader=options.pop("loader", None)),  # type: ignore[arg-type]
                    MessageContext.from_bytes(raw), ENV, **options)


@dataclass
class Scripts:
    """A ScriptLoader over two dicts, counting what it is asked."""

    personal_scripts: dict[str, str] = field(default_factory=dict)
    global_scripts: dict[str, str] = field(default_factory=dict)

    def personal(self, name: str) -> str | None:
        return self.personal_scripts.get(name)

    def global_(self, name: str) -> str | None:
        return self.global_scripts.get(name)


def test_supported_extensions_list_everything_require_accepts() -> None:
    assert {"include", "duplicate", "relational", "regex", "date", "index", "editheader",
            "encoded-character", "environment", "mailbox", "mime", "foreverypart",
            "comparator-i;ascii-numeric", "fileinto", "vacation", "variables"} <= (
        SUPPORTED_EXTENSIONS)
    for capability in SUPPORTED_EXTENSIONS:
        compile(f'require "{capability}";')


# --- duplicate: read-only memory in, marks out ----------------------------------------------


def test_duplicate_returns_marks_and_touches_nothing() -> None:
    memory = MappingProxyType({})  # read-only: a write would raise
    result = run('require "duplicate"; if duplicate { discard; }', seen=memory.__contains__)
    key = duplicate_key(None, "<m-1@example.com>", False)
    assert result.duplicate_marks == [DuplicateMark(key, 12 * 3600, None, False)]
    assert result.actions == [FileInto("INBOX")]


def test_a_seen_message_is_a_duplicate_and_is_not_marked_again() -> None:
    key = duplicate_key("lists", "<m-1@example.com>", False)
    result = run('require "duplicate"; if duplicate :handle "lists" { discard; }',
                 seen={key}.__contains__)
    assert result.actions[0].__class__.__name__ == "Discard"
    assert result.duplicate_marks == []


def test_last_renews_the_mark_even_for_a_duplicate() -> None:
    seen = {duplicate_key(None, "<m-1@example.com>", True)}
    result = run('require "duplicate"; if duplicate :last :seconds 60 { discard; }',
                 seen=seen.__contains__)
    assert [m.seconds for m in result.duplicate_marks] == [60]
    assert result.duplicate_marks[0].last


def test_last_also_sees_marks_made_without_last() -> None:
    seen = {duplicate_key(None, "<m-1@example.com>", False)}
    result = run('require "duplicate"; if duplicate :last { discard; }', seen=seen.__contains__)
    assert result.actions[0].__class__.__name__ == "Discard"


def test_seconds_are_capped_at_the_maximum_and_default_is_12_hours() -> None:
    result = run('require "duplicate"; if duplicate :seconds 99999999 {} '
                 'if duplicate :handle "x" {}')
    assert [m.seconds for m in result.duplicate_marks] == [2 * 86400, 12 * 3600]
    limits = SieveLimits(duplicate_default_seconds=14 * 86400, duplicate_max_seconds=14 * 86400)
    result = run('require "duplicate"; if duplicate {}', limits=limits)
    assert result.duplicate_marks[0].seconds == 14 * 86400


def test_the_same_question_twice_gets_the_same_answer_and_one_mark() -> None:
    # Pigeonhole 0.5.19 fails the script here; RFC 7352 wants a consistent answer
    for seen in (set(), {duplicate_key(None, "<m-1@example.com>", False)}):
        result = run('require ["duplicate", "fileinto"]; if duplicate { fileinto "A"; } '
                     'if duplicate { fileinto "B"; }', seen=seen.__contains__)
        assert not result.errors
        folders = [a.folder for a in result.actions if isinstance(a, FileInto)]
        assert folders == (["A", "B"] if seen else ["INBOX"])
        assert len(result.duplicate_marks) == (0 if seen else 1)


def test_uniqueid_and_header_values_key_the_memory() -> None:
    result = run('require ["duplicate", "variables"]; set "id" "abc"; '
                 'if duplicate :uniqueid "${id}" {} if duplicate :header "subject" {}')
    assert [m.key for m in result.duplicate_marks] == [
        duplicate_key(None, "abc", False), duplicate_key(None, "hello", False)]


def test_a_failed_run_returns_no_marks() -> None:
    result = run('require ["duplicate", "reject"]; if duplicate {} keep; reject "no";')
    assert result.errors and result.duplicate_marks == []


def test_marks_of_both_scripts_are_returned() -> None:
    before = compile('require "duplicate"; if duplicate :handle "global" {}')
    user = compile('require "duplicate"; if duplicate :handle "user" {}')
    result = run_scripts(before, user, MessageContext.from_bytes(RAW), ENV)
    assert [m.handle for m in result.duplicate_marks] == ["global", "user"]


# --- editheader: the edited message comes back -----------------------------------------------


def test_unchanged_message_is_none_and_edited_one_is_returned() -> None:
    assert run("keep;").edited_message is None
    result = run('require "editheader"; addheader "X-Seen" "yes"; deleteheader "subject";')
    assert result.edited_message == RAW.replace(b"Subject: hello\n", b"").replace(
        b"Received: from a", b"X-Seen: yes\nReceived: from a", 1)
    assert result.actions == [FileInto("INBOX")]
    assert result.actions[0].message == result.edited_message  # type: ignore[union-attr]


def test_each_action_carries_the_message_as_it_was_then() -> None:
    result = run('require ["editheader", "fileinto", "copy"]; fileinto "Before"; '
                 'addheader "X-A" "1"; redirect :copy "x@example.net"; fileinto "After";')
    before, redirect, after = result.actions
    assert isinstance(before, FileInto) and before.message is None
    assert isinstance(redirect, Redirect) and redirect.message is not None
    assert redirect.message.startswith(b"X-A: 1\n")
    assert isinstance(after, FileInto) and after.message == redirect.message


def test_received_and_the_redirect_marker_cannot_be_edited() -> None:
    result = run('require "editheader"; deleteheader "received"; deleteheader "Auto-Submitted"; '
                 'addheader "X-Lmtpd-Redirected" "<me@example.org>";')
    assert result.edited_message is None and not result.errors


def test_the_user_script_sees_and_keeps_the_global_scripts_edit() -> None:
    before = compile('require "editheader"; addheader "X-Spam" "no";')
    user = compile('require "fileinto"; if header :is "x-spam" "no" { fileinto "Ham"; }')
    result = run_scripts(before, user, MessageContext.from_bytes(RAW), ENV)
    assert result.actions == [FileInto("Ham")]
    assert result.actions[0].message == b"X-Spam: no\n" + RAW  # type: ignore[union-attr]
    assert result.edited_message == b"X-Spam: no\n" + RAW


def test_crlf_messages_get_crlf_fields() -> None:
    raw = RAW.replace(b"\n", b"\r\n")
    result = run('require "editheader"; addheader :last "X-End" "1";', raw=raw)
    assert result.edited_message is not None
    assert b"Message-ID: <m-1@example.com>\r\nX-End: 1\r\n\r\nHi\r\n" in result.edited_message


# --- include: compile time, loops, depth, missing scripts ----------------------------------


def test_include_loops_are_refused_with_line_and_column() -> None:
    scripts = Scripts({"a": 'require "include";\n  include "b";', "b": 'require "include"; '
                       'include "a";'})
    with pytest.raises(SieveSyntaxError, match="circular include") as info:
        compile('require "include";\ninclude "a";', loader=scripts)
    assert (info.value.line, info.value.column) == (2, 1)
    with pytest.raises(SieveSyntaxError, match="circular include"):
        compile('require "include"; include "self";', loader=scripts, name="self")


def _chain(depth: int) -> Scripts:
    scripts = {f"s{i}": f'require "include"; include "s{i + 1}";' for i in range(1, depth)}
    scripts[f"s{depth}"] = 'require "fileinto"; fileinto "Bottom";'
    return Scripts(scripts)


def test_ten_levels_of_includes_and_not_eleven() -> None:
    result = run('require "include"; include "s1";', loader=_chain(10))
    assert result.actions == [FileInto("Bottom")]
    with pytest.raises(SieveSyntaxError, match="deeper than 10 levels"):
        compile('require "include"; include "s1";', loader=_chain(11))
    limits = SieveLimits(max_include_depth=2)
    with pytest.raises(SieveSyntaxError, match="deeper than 2 levels"):
        compile('require "include"; include "s1";', limits=limits, loader=_chain(3))


def test_more_than_max_includes_is_refused() -> None:
    scripts = Scripts({f"p{i}": "keep;" for i in range(5)})
    text = 'require "include";' + "".join(f'include "p{i}";' for i in range(5))
    compile(text, loader=scripts)
    with pytest.raises(SieveSyntaxError, match="no more than 4 includes"):
        compile(text, SieveLimits(max_includes=4), loader=scripts)


def test_a_missing_script_is_an_error_except_when_uploading_or_optional() -> None:
    text = 'require ["include", "fileinto"]; include "later"; fileinto "Main";'
    with pytest.raises(SieveSyntaxError, match="included personal script 'later' does not"):
        compile(text, loader=Scripts())
    uploaded = compile(text, loader=Scripts(), uploading=True)
    assert uploaded.warnings and "does not exist" in uploaded.warnings[0]
    result = evaluate(uploaded, MessageContext.from_bytes(RAW), ENV)
    assert result.actions == [FileInto("Main")]
    compile('require "include"; include :optional "later";', loader=Scripts())
    with pytest.raises(SieveSyntaxError):
        compile('require "include"; include "later";')  # no loader: nothing exists


def test_included_scripts_are_compiled_once_and_checked_for_changes() -> None:
    scripts = Scripts({"lib": 'require "fileinto"; fileinto "Lib";'},
                      {"spam": 'require "fileinto"; fileinto "Junk";'})
    script = compile('require "include"; include "lib"; include "lib"; include :global "spam";',
                     loader=scripts)
    assert script.includes[("personal", "lib")] is not None
    assert up_to_date(script, scripts)
    scripts.global_scripts["spam"] = "discard;"
    assert not up_to_date(script, scripts)
    del scripts.personal_scripts["lib"]
    assert not up_to_date(script, scripts)


def test_an_error_in_an_included_script_names_it() -> None:
    scripts = Scripts({"bad": "keep;\nfrobnicate;"})
    with pytest.raises(SieveSyntaxError) as info:
        compile('require "include";\ninclude "bad";', loader=scripts)
    assert "included personal script 'bad'" in info.value.message
    assert "line 2, column 1: unknown command 'frobnicate'" in info.value.message
    assert info.value.line == 2


def test_invalid_script_names_are_refused() -> None:
    for name in ("a/b", "", "x\ty", "\u2028"):
        with pytest.raises(SieveSyntaxError):
            compile(f'require "include"; include "{name}";', loader=Scripts())


# --- date and index: RFC 5260 -----------------------------------------------------------------


def test_date_index_picks_the_field_rfc_5260_names() -> None:
    # Pigeonhole 0.5.19 reads the first Received field whatever :index says
    text = ('require ["date", "index", "variables", "fileinto"]; '
            'if date :index {} {} :originalzone :matches "received" "zone" "*" '
            '{{ fileinto "${{1}}"; }}')
    assert run(text.format(2, "")).actions == [FileInto("-0700")]
    assert run(text.format(1, ":last")).actions == [FileInto("-0700")]
    assert run(text.format(1, "")).actions == [FileInto("+0200")]
    assert run(text.format(3, "")).actions == [FileInto("INBOX")]


def test_currentdate_uses_the_time_given() -> None:
    now = calendar.timegm((2024, 2, 29, 23, 59, 58))
    text = ('require ["date", "variables", "fileinto"]; '
            'if currentdate :zone "+0100" :matches "iso8601" "*" { fileinto "${1}"; }')
    assert run(text, now=now).actions == [FileInto("2024-03-01T00:59:58+01:00")]
    text = ('require ["date", "relational", "fileinto"]; '
            'if currentdate :value "lt" "date" "2000-01-01" { fileinto "Past"; }')
    assert run(text, now=0).actions == [FileInto("Past")]


# --- environment -----------------------------------------------------------------------------


def test_environment_items_come_from_the_caller_with_mda_defaults() -> None:
    text = ('require ["environment", "variables", "fileinto"]; '
            'if environment :matches "{}" "*" {{ fileinto "${{1}}"; }}')
    assert run(text.format("location")).actions == [FileInto("MDA")]
    assert run(text.format("phase")).actions == [FileInto("during")]
    assert run(text.format("name")).actions == [FileInto("lmtpd")]
    assert run(text.format("host"), environment={"host": "mx.example.org"}).actions == [
        FileInto("mx.example.org")]
    assert run(text.format("host")).actions == [FileInto("INBOX")]


# --- foreverypart: RFC 5703 -------------------------------------------------------------------


def test_commands_after_a_nested_loop_run() -> None:
    # Pigeonhole 0.5.19 fails this script ("corrupt binary")
    text = ('require ["foreverypart", "mime", "variables", "fileinto"]; set "n" ""; '
            'foreverypart { foreverypart { set "n" "${n}x"; } set "n" "${n}o"; } '
            'fileinto "${n}";')
    # five parts: the message, the alternative (two children), plain, html, pdf
    assert run(text, raw=MULTIPART).actions == [FileInto("xxxxoxxoooo")]


def test_break_leaves_only_the_loop_it_names() -> None:
    text = ('require ["foreverypart", "mime", "variables", "fileinto"]; set "n" ""; '
            'foreverypart :name "outer" { set "n" "${n}o"; '
            'foreverypart { set "n" "${n}i"; break; } } fileinto "${n}";')
    assert run(text, raw=MULTIPART).actions == [FileInto("oioiooo")]
    text = text.replace("break;", 'break :name "outer";')
    assert run(text, raw=MULTIPART).actions == [FileInto("oi")]


def test_mime_part_headers_of_any_child() -> None:
    text = ('require ["mime", "fileinto"]; '
            'if header :mime :anychild :subtype "content-type" "pdf" { fileinto "Pdf"; }')
    assert run(text, raw=MULTIPART).actions == [FileInto("Pdf")]
    assert run(text, raw=RAW).actions == [FileInto("INBOX")]
