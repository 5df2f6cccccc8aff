"""Parser: grammar corners, and errors that point at the right line and column."""

from __future__ import annotations

import pytest

from lmtpd.sieve import SieveSyntaxError, compile
from lmtpd.sieve.ast import Command


def first(text: str) -> Command:
    return compile(text).commands[-1]


def test_strings_escapes_and_lists() -> None:
    cmd = first('require "fileinto"; fileinto "a\\\\b\\"c\\d";')
    assert cmd.positional == ['a\\b"cd']
    test = first('if header :is ["a", "b"] "c" { keep; }').tests[0]
    assert test.positional == [["a", "b"], ["c"]]
    assert test.tags == {"match": "is"}


def test_multiline_string_dot_unstuffing_and_crlf() -> None:
    cmd = first('require "reject"; reject text: # trailing comment\nline 1\n..dot\n.\n;')
    assert cmd.positional == ["line 1\r\n.dot\r\n"]


def test_numbers_with_quantifiers() -> None:
    for text, value in (("10", 10), ("2K", 2048), ("3m", 3 << 20), ("1G", 1 << 30)):
        test = first(f"if size :over {text} {{ keep; }}").tests[0]
        assert test.positional == [value]


def test_comments_and_nesting() -> None:
    script = compile("# hash\n/* block\ncomment */ if true { if false { stop; } }")
    outer = script.commands[0]
    assert outer.block is not None and outer.block[0].name == "if"


def test_requires_are_collected() -> None:
    script = compile('require ["fileinto", "copy"]; require "variables";')
    assert script.requires == {"fileinto", "copy", "variables"}


def test_fifteen_levels_of_nesting_are_supported() -> None:
    compile("if true {" * 15 + "keep;" + "}" * 15)
    compile("if " + "not " * 15 + "true { keep; }")


def test_error_str_format() -> None:
    err = SieveSyntaxError("boom", 3, 7)
    assert str(err) == "line 3, column 7: boom"
    assert (err.line, err.column, err.message) == (3, 7, "boom")


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("keep", 1, 5, "expected ';'"),
        ('require "fileinto";\nif true {\n  fileinto "A"\n}\n', 4, 1, "expected ';'"),
        ('if header :is "a" "b" {\n keep;\n', 3, 1, "missing '}'"),
        ("\n\n   frob;", 3, 4, "unknown command 'frob'"),
        ("keep;\n/* open", 2, 1, "unterminated comment"),
        ('keep;\n  if header "a', 2, 13, "unterminated string"),
        ('require "fileinto";\n  fileinto "a";\n require "body";', 3, 2, "require"),
        ("if size :over 5X { keep; }", 1, 15, "invalid number '5X'"),
        ('keep;\nreject "x";', 2, 1, "unknown command 'reject'"),
        ('require ["fileinto",\n   "x-nope"];', 1, 9, "unknown Sieve capability 'x-nope'"),
        ('if header :bogus "a" "b" {}', 1, 11, "':bogus'"),
        ("redirect text: junk\n", 1, 15, "end of line"),
        ("if true {\n\tkeep;\n} elsif true\n", 4, 1, "expected"),
        ("if true { keep; }\n  else if true { keep; }", 2, 3, "else"),
        ('require "vacation";\nvacation :days "x" "r";', 2, 16, "number"),
        ('require "fileinto";\nfileinto ["a", "b"];', 2, 10, "string list"),
        ("if anyof (true, ) { keep; }", 1, 17, "expected a test"),
        ("keep;\n\n\t\tdiscard :copy;", 3, 11, "':copy'"),
        ('if header :is :comparator "i;bogus" "a" "b" {}', 1, 4, "comparator"),
        ("text:\nfoo\n", 1, 1, "unterminated multi-line string"),
        ("stop; @", 1, 7, "unexpected character"),
        ('require "fileinto" fileinto "A";', 1, 1, "missing semicolon ';' after"),
        ('require "fileinto";\n\n  fileinto "A"\n  keep;', 3, 3, "missing semicolon"),
        ('require ["fileinto", "copy"];\nfileinto copy "A";', 2, 1, "missing colon"),
        ('keep;\n keep "INBOX";', 2, 2, "requires 0 positional argument(s), but 1"),
        ("keep;\nstop { }", 2, 1, "does not accept a command block"),
        ("discard true;", 1, 1, "accepts no sub-tests"),
        ("if (true) { keep; }", 1, 1, "requires one sub-test, but a list of tests"),
        ("if allof true { keep; }", 1, 4, "requires a list of sub-tests"),
        ("if true { keep; } else true { }", 1, 19, "accepts no sub-tests"),
        ("if true;", 1, 1, "requires a command block"),
        ('require "duplicate";\nif duplicate :header "a" :uniqueid "b" {}', 2, 4,
         "conflicting :header and :uniqueid"),
        ('require ["regex"];\nif header :regex "s" "a{2,1}" {}', 2, 4, "invalid regular"),
        ('require "relational";\nif header :count "more" "s" "1" {}', 2, 4, '"more" was found'),
        ('require "index";\nif header :index 0 "s" "1" {}', 2, 4, "cannot be zero"),
        ('require ["mime"];\nif header :type "content-type" "text" {}', 2, 4, "without the :mime"),
        ('require ["foreverypart"];\nforeverypart { }\nbreak;', 3, 1, "not placed inside"),
        ('require ["encoded-character", "reject"];\nkeep;\nreject "${unicode:DFFF}";', 3, 8,
         "invalid unicode character"),
    ],
)
def test_error_positions(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(SieveSyntaxError) as info:
        compile(text)
    err = info.value
    assert fragment in err.message
    assert (err.line, err.column) == (line, column), str(err)
    assert str(err).startswith(f"line {line}, column {column}: ")


def test_column_counts_characters_not_bytes() -> None:
    with pytest.raises(SieveSyntaxError) as info:
        compile('if header :is "subject" "ü€é" { keep; } frob;')
    assert info.value.column == 41


def test_invalid_utf8_is_refused_with_position() -> None:
    with pytest.raises(SieveSyntaxError) as info:
        compile(b"keep;\n# \xff\n")
    assert (info.value.line, info.value.column) == (2, 3)


def test_extension_tags_need_their_require() -> None:
    with pytest.raises(SieveSyntaxError, match="':flags'"):
        compile('keep :flags "\\\\Seen";')
    with pytest.raises(SieveSyntaxError, match="':detail'"):
        compile('if address :detail "to" "x" { keep; }')
    compile(
        'require ["imap4flags", "subaddress"]; keep :flags "\\\\Seen";'
        'if address :detail "to" "x" { keep; }'
    )


def test_warnings_do_not_stop_a_script() -> None:
    script = compile('require ["date", "duplicate"]; if date :zone "CET" "date" "year" "2024" {} '
                     'if duplicate :seconds 9999999 {} if header "bad name" "x" {}')
    assert len(script.warnings) == 3
    assert all(w.startswith("line 1: ") for w in script.warnings)
