"""The grammar of RFC 5228 section 8.2: tokens to commands, tests, arguments and blocks.

The parser knows the generic grammar only; which commands exist and what they take is the
validator's business (``compile.compile`` runs both).
"""

from __future__ import annotations

from .ast import Argument, Command, Number, SieveSyntaxError, StringList, Tag, Test
from .lexer import Lexer, Token
from .limits import SieveLimits


class Parser:
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
        test_list = self.is_punct("(")
        if test_list:
            tests = self.tests_in_parens(depth)
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
        cmd = Command(t.value, args, tests, block, t.line, t.column)  # type: ignore[arg-type]
        cmd.test_list = test_list
        return cmd

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

    def tests_in_parens(self, depth: int) -> list[Test]:
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
        test_list = self.is_punct("(")
        if test_list:
            tests = self.tests_in_parens(depth + 1)
        elif self.tok.kind == "ident":
            tests = [self.test(depth + 1)]
        test = Test(t.value, args, tests, t.line, t.column)  # type: ignore[arg-type]
        test.test_list = test_list
        return test


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


def parse_commands(text: str, limits: SieveLimits) -> list[Command]:
    """The commands of ``text``; raises SieveSyntaxError with line and column."""
    return Parser(Lexer(text).tokens(), limits).commands(0, in_block=False)
