"""The tokenizer of RFC 5228 section 8.1: identifiers, tags, numbers, strings, punctuation.

Positions are kept for every token, so errors name a line and a column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ast import SieveSyntaxError


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


class Lexer:
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
