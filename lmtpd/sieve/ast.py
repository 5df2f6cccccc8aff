"""The syntax tree of a Sieve script (RFC 5228 section 8) and the compile error.

The parser fills in names, arguments, tests and blocks; the validator then sorts each node's
arguments into ``tags`` and ``positional`` so the interpreter never looks at raw arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class SieveSyntaxError(Exception):
    """A script that cannot be compiled. ``str()`` is ``line L, column C: message``."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


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
    # the tests were written as a parenthesised list, e.g. "allof (true)"
    test_list: bool = False


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
    test_list: bool = False


Node = Command | Test


@dataclass
class Script:
    """A compiled script: its commands, what it requires, and the scripts it includes.

    ``includes`` maps ``(location, name)`` (location ``personal`` or ``global``) to the compiled
    script, or to None when an ``:optional`` script (or, for an uploaded script, any script) is
    missing. ``sources`` maps the same keys to the text each included script was compiled from,
    so a cache can tell when an included script changed.
    """

    commands: list[Command]
    requires: frozenset[str]
    size: int
    name: str = ""
    location: str = "personal"
    includes: dict[tuple[str, str], Script | None] = field(default_factory=dict)
    sources: dict[tuple[str, str], str | bytes | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # variables this script declares with the "global" command (lower-cased)
    globals: frozenset[str] = frozenset()
