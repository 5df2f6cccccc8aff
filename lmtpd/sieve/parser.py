"""Tokenizer and parser for the RFC 5228 grammar, producing AST dataclasses.

The parser only knows the generic grammar (commands, arguments, tests, blocks).
Which commands exist and what arguments they take is checked afterwards by
``validator.validate``; ``parse`` runs both, so callers see one entry point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .limits import SieveLimits


class SieveSyntaxError(Exception):
    """A script that cannot be compiled. ``str()`` is ``line L, column C: message``."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


# --- AST -------------------------------------------------------------------


@dataclass(frozen=True)
class Tag:
    name: str  # without the leading colon, lower-cased
    line: int
    column: int


@dataclass(frozen=True)
class Number:
    value: int
    line: int
    column: int


@dataclass(frozen=True)
class StringList:
    """A string or a string list; ``is_list`` keeps the difference for validation."""

    values: tuple[str, ...]
    is_list: bool
    line: int
    column: int


Argument = Tag | Number | StringList


@dataclass
class Test:
    name: str
    args: list[Argument]
    tests: list[Test]
    line: int
    column: int
    # filled in by the validator
    tags: dict[str, object] = field(default_factory=dict)
    positional: list[object] = field(default_factory=list)


@dataclass
class Command:
    name: str
    args: list[Argument]
    tests: list[Test]
    block: list[Command] | None
    line: int
    column: int
    tags: dict[str, object] = field(default_factory=dict)
    positional: list[object] = field(default_factory=list)


@dataclass
class Script:
    commands: list[Command]
    requires: frozenset[str]
    size: int


# --- tokenizer -------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # ident, tag, number, string, mstring, punct, eof
    value: object
    line: int
    column: int


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+([KkMmGg])?")
_QUANT = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_MAX_NUMBER = (1 << 63) - 1
_PUNCT = "[](){},;"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.line_start = 0

    def _col(self, pos: int | None = None) -> int:
        return (self.pos if pos is None else pos) - self.line_start + 1

    def _advance_to(self, end: int) -> None:
        # keep line/column bookkeeping right across multi-line tokens
        chunk = self.text[self.pos : end]
        newlines = chunk.count("\n")
        if newlines:
            self.line += newlines
            self.line_start = self.pos + chunk.rindex("\n") + 1
        self.pos = end

    def error(self, message: str) -> SieveSyntaxError:
        return SieveSyntaxError(message, self.line, self._col())

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        text = self.text
        n = len(text)
        while True:
            self._skip_space()
            if self.pos >= n:
                out.append(Token("eof", None, self.line, self._col()))
                return out
            line, col = self.line, self._col()
            ch = text[self.pos]
            if ch in _PUNCT:
                out.append(Token("punct", ch, line, col))
                self.pos += 1
            elif ch == '"':
                out.append(Token("string", self._quoted(), line, col))
            elif ch == ":":
                m = _IDENT.match(text, self.pos + 1)
                if not m:
                    raise self.error("expected a tag name after ':'")
                out.append(Token("tag", m.group(0).lower(), line, col))
                self.pos = m.end()
            elif ch.isdigit():
                m = _NUMBER.match(text, self.pos)
                assert m is not None
                digits = m.group(0).rstrip("KkMmGg")
                value = int(digits) * _QUANT.get((m.group(1) or "").lower(), 1)
                if value > _MAX_NUMBER:
                    raise SieveSyntaxError("number is too large", line, col)
                self.pos = m.end()
                if self.pos < n and (text[self.pos].isalnum() or text[self.pos] == "_"):
                    bad = f"{m.group(0)}{text[self.pos]}"
                    raise SieveSyntaxError(f"invalid number '{bad}'", line, col)
                out.append(Token("number", value, line, col))
            elif _IDENT.match(text, self.pos):
                m = _IDENT.match(text, self.pos)
                assert m is not None
                word = m.group(0)
                if word.lower() == "text" and text.startswith(":", m.end()):
                    self.pos = m.end() + 1
                    out.append(Token("string", self._multiline(line, col), line, col))
                else:
                    out.append(Token("ident", word.lower(), line, col))
                    self.pos = m.end()
            else:
                raise self.error(f"unexpected character {ch!r}")

    def _skip_space(self) -> None:
        text = self.text
        n = len(text)
        while self.pos < n:
            ch = text[self.pos]
            if ch == "\n":
                self.pos += 1
                self.line += 1
                self.line_start = self.pos
            elif ch in " \t\r":
                self.pos += 1
            elif ch == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated comment")
                self._advance_to(end + 2)
            else:
                return

    def _quoted(self) -> str:
        text = self.text
        start_line, start_col = self.line, self._col()
        i = self.pos + 1
        parts: list[str] = []
        seg = i
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                # RFC 5228 2.4.2: backslash escapes only quote and backslash;
                # any other escaped character stands for itself
                parts.append(text[seg:i])
                parts.append(text[i + 1])
                i += 2
                seg = i
            elif ch == '"':
                parts.append(text[seg:i])
                self._advance_to(i + 1)
                return _normalize_newlines("".join(parts))
            else:
                i += 1
        raise SieveSyntaxError("unterminated string", start_line, start_col)

    def _multiline(self, line: int, col: int) -> str:
        text = self.text
        # rest of the "text:" line may hold only whitespace or a hash comment
        m = re.compile(r"[ \t]*(#[^\n]*)?\r?\n").match(text, self.pos)
        if not m:
            raise self.error("expected end of line after 'text:'")
        self._advance_to(m.end())
        out: list[str] = []
        n = len(text)
        while self.pos < n:
            end = text.find("\n", self.pos)
            if end < 0:
                break
            raw = text[self.pos : end]
            self._advance_to(end + 1)
            body = raw[:-1] if raw.endswith("\r") else raw
            if body == ".":
                return "".join(out)
            if body.startswith("."):
                body = body[1:]  # dot-unstuffing
            out.append(body + "\r\n")
        raise SieveSyntaxError("unterminated multi-line string", line, col)


def _normalize_newlines(s: str) -> str:
    # Strings compare against messages with CRLF line ends, like Pigeonhole does
    if "\n" not in s:
        return s
    return re.sub(r"\r?\n", "\r\n", s)


# --- parser ----------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token], limits: SieveLimits) -> None:
        self.toks = tokens
        self.i = 0
        self.limits = limits

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, message: str, tok: Token | None = None) -> SieveSyntaxError:
        t = tok or self.tok
        return SieveSyntaxError(message, t.line, t.column)

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.value == ch

    def expect(self, ch: str, what: str) -> Token:
        if not self.is_punct(ch):
            raise self.error(f"expected {what} but found {_describe(self.tok)}")
        return self.next()

    def commands(self, depth: int, in_block: bool) -> list[Command]:
        out: list[Command] = []
        while True:
            t = self.tok
            if t.kind == "eof":
                if in_block:
                    raise self.error("missing '}' at end of block")
                return out
            if in_block and self.is_punct("}"):
                return out
            out.append(self.command(depth))

    def command(self, depth: int) -> Command:
        t = self.next()
        if t.kind != "ident":
            raise self.error(f"expected a command but found {_describe(t)}", t)
        args = self.arguments()
        tests: list[Test] = []
        if self.is_punct("("):
            tests = self.test_list(depth)
        elif self.tok.kind == "ident":
            tests = [self.test(depth)]
        block: list[Command] | None = None
        if self.is_punct("{"):
            if depth + 1 > self.limits.max_nesting:
                raise self.error(f"nesting depth exceeds the limit of {self.limits.max_nesting}")
            self.next()
            block = self.commands(depth + 1, in_block=True)
            self.expect("}", "'}'")
        else:
            self.expect(";", "';'")
        return Command(t.value, args, tests, block, t.line, t.column)  # type: ignore[arg-type]

    def arguments(self) -> list[Argument]:
        args: list[Argument] = []
        while True:
            t = self.tok
            if t.kind == "tag":
                args.append(Tag(t.value, t.line, t.column))  # type: ignore[arg-type]
                self.next()
            elif t.kind == "number":
                args.append(Number(t.value, t.line, t.column))  # type: ignore[arg-type]
                self.next()
            elif t.kind == "string":
                args.append(StringList((t.value,), False, t.line, t.column))  # type: ignore[arg-type]
                self.next()
            elif self.is_punct("["):
                self.next()
                values: list[str] = []
                while True:
                    s = self.next()
                    if s.kind != "string":
                        raise self.error(f"expected a string but found {_describe(s)}", s)
                    values.append(s.value)  # type: ignore[arg-type]
                    if self.is_punct(","):
                        self.next()
                        continue
                    self.expect("]", "',' or ']'")
                    break
                args.append(StringList(tuple(values), True, t.line, t.column))
            else:
                return args

    def test_list(self, depth: int) -> list[Test]:
        self.next()  # (
        tests = [self.test(depth)]
        while self.is_punct(","):
            self.next()
            tests.append(self.test(depth))
        self.expect(")", "',' or ')'")
        return tests

    def test(self, depth: int) -> Test:
        if depth + 1 > self.limits.max_nesting:
            raise self.error(f"nesting depth exceeds the limit of {self.limits.max_nesting}")
        t = self.next()
        if t.kind != "ident":
            raise self.error(f"expected a test but found {_describe(t)}", t)
        args = self.arguments()
        tests: list[Test] = []
        if self.is_punct("("):
            tests = self.test_list(depth + 1)
        elif self.tok.kind == "ident":
            tests = [self.test(depth + 1)]
        return Test(t.value, args, tests, t.line, t.column)  # type: ignore[arg-type]


def _describe(t: Token) -> str:
    if t.kind == "eof":
        return "end of script"
    if t.kind == "string":
        return "a string"
    if t.kind == "tag":
        return f"tag ':{t.value}'"
    if t.kind == "number":
        return "a number"
    return f"'{t.value}'"


def parse(text: str | bytes, limits: SieveLimits | None = None) -> Script:
    """Parse and validate a script; raises SieveSyntaxError with line and column."""
    from .validator import validate  # the validator imports the AST from here

    limits = limits or SieveLimits()
    if isinstance(text, bytes):
        if len(text) > limits.max_script_size:
            raise SieveSyntaxError(
                f"script is larger than the limit of {limits.max_script_size} bytes", 1, 1
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            line = text[: e.start].count(b"\n") + 1
            col = e.start - (text.rfind(b"\n", 0, e.start) + 1) + 1
            raise SieveSyntaxError("script is not valid UTF-8", line, col) from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_script_size:
        raise SieveSyntaxError(
            f"script is larger than the limit of {limits.max_script_size} bytes", 1, 1
        )
    tokens = _Lexer(text).tokens()
    commands = _Parser(tokens, limits).commands(0, in_block=False)
    requires = validate(commands)
    return Script(commands, requires, size)
