"""How a command or test is written and what it does: the one description of each, per extension.

A ``Spec`` says which tags and positional arguments a command or test takes, whether it takes
tests or a block, which extension must be required for it, the compile-time checks beyond its
shape (``check``) and what it does when run (``run``). The extension modules under ``ext/``
hold the specs; the validator and the interpreter only read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .match import MatchType

ArgKind = Literal["string", "stringlist", "number"]
# turns a string as written into the string the script means; ValueError: a compile error
StringDecoder = Callable[[str], str]
Subtests = Literal["none", "one", "list"]
BlockRule = Literal["none", "required"]


@dataclass(frozen=True)
class TagDef:
    """A tagged argument. Tags that share a ``slot`` exclude each other (``:is``/``:contains``);
    the slot's value is then the tag's name, or ``(name, argument)`` when it takes one."""

    arg: ArgKind | None = None
    ext: str | None = None  # the extension that must be required to use it
    slot: str | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Literal["command", "test"]
    ext: str | None = None
    tags: Mapping[str, TagDef] = field(default_factory=dict)
    positional: tuple[ArgKind, ...] = ()
    # trailing positional arguments that may be left out (deleteheader's value patterns)
    optional: tuple[ArgKind, ...] = ()
    # with "variables" required, one more leading argument naming a variable (imap4flags)
    var_leading: ArgKind | None = None
    subtests: Subtests = "none"
    block: BlockRule = "none"
    loop: bool = False  # its block is a loop that break can leave (foreverypart)
    # check(validator.Checker, node): compile-time checks beyond the shape; raises
    # SieveSyntaxError. run(runtime.Runtime, node): a command's effect, or a test's truth.
    # (Typed loosely: this module sits below the validator and the runtime, which read it.)
    check: Callable[[Any, Any], None] | None = None
    run: Callable[[Any, Any], Any] | None = None


@dataclass(frozen=True)
class Extension:
    """One Sieve extension (or the base language, ``name`` ""): what it adds to the language."""

    name: str
    commands: tuple[Spec, ...] = ()
    tests: tuple[Spec, ...] = ()
    # the capabilities this module provides besides its name (comparator-i;ascii-numeric)
    capabilities: tuple[str, ...] = ()
    # applied to every string of a script that requires the extension, before anything else
    decode_strings: StringDecoder | None = None


@dataclass(frozen=True)
class Registry:
    """Everything the language knows, assembled from the extension modules."""

    commands: Mapping[str, Spec]
    tests: Mapping[str, Spec]
    match_types: Mapping[str, MatchType]
    capabilities: frozenset[str]  # what "require" accepts, and what ManageSieve advertises
    string_decoders: Mapping[str, StringDecoder] = field(default_factory=dict)
