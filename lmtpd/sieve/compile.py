"""Compile a script: decode, lex, parse, validate, and compile every script it includes.

``compile`` is the one entry point; it raises ``SieveSyntaxError`` with a line and column.

Includes (RFC 6609) are resolved here, as Pigeonhole resolves them when it compiles: a
``ScriptLoader`` gives the text of another script of the same mailbox (``:personal``) or of
a global one (``:global``), and each included script is compiled into the result. What
happens when an included script does not exist:

- with ``:optional``: nothing; the include does nothing when run;
- when a script is being stored (``uploading=True``, as ManageSieve's PUTSCRIPT and
  CHECKSCRIPT do): a warning in ``Script.warnings``, not an error, because the missing script
  may well be uploaded next; the include does nothing if the script is run as compiled;
- otherwise (delivery compiles with ``uploading=False``): a compile error. Delivery then keeps
  the message and logs the error, as Pigeonhole does when an included script has gone.

Circular includes (without ``:once``), more than ``max_include_depth`` (10) levels of
includes, and more than ``max_includes`` (255) included scripts are compile errors.
"""

from __future__ import annotations

from typing import Protocol

from .ast import Command, Script, SieveSyntaxError
from .ext import REGISTRY
from .limits import SieveLimits
from .parser import parse_commands
from .validator import Checker, validate

Key = tuple[str, str]  # (location, name): ("personal", "work") or ("global", "spam")


class ScriptLoader(Protocol):
    """Where included scripts come from; None when there is no such script. Bytes are
    checked to be UTF-8 like any script."""

    def personal(self, name: str) -> str | bytes | None: ...

    def global_(self, name: str) -> str | bytes | None: ...


def decode(text: str | bytes, limits: SieveLimits) -> tuple[str, int]:
    """The script as text and its size in bytes; refuses oversized and non-UTF-8 scripts."""
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
    return text, size


class _Compiler:
    def __init__(self, limits: SieveLimits, loader: ScriptLoader | None, uploading: bool) -> None:
        self.limits = limits
        self.loader = loader
        self.uploading = uploading
        self.included: dict[Key, Script] = {}  # every script of the tree, compiled once

    def script(self, text: str | bytes, key: Key, chain: list[Key]) -> Script:
        text, size = decode(text, self.limits)
        script = Script([], frozenset(), size, name=key[1], location=key[0])
        if chain:
            self.included[key] = script  # before its own includes: :once loops end here
        commands = parse_commands(text, self.limits)

        def include(checker: Checker, cmd: Command, location: str, name: str, once: bool,
                    optional: bool) -> None:
            self.include(script, [*chain, key], checker, cmd, (location, name), once, optional)

        checker = validate(commands, REGISTRY, include, self.limits)
        script.commands = commands
        script.requires = checker.requires
        script.globals = frozenset(checker.globals)
        script.warnings.extend(checker.warnings)
        return script

    def include(self, parent: Script, chain: list[Key], checker: Checker, cmd: Command,
                key: Key, once: bool, optional: bool) -> None:
        location, name = key
        if len(chain) - 1 >= self.limits.max_include_depth:
            raise checker.error(
                f"cannot nest includes deeper than {self.limits.max_include_depth} levels", cmd
            )
        if not once and key in chain:
            raise checker.error("circular include", cmd)
        if key in self.included:
            parent.includes[key] = self.included[key]
            return
        text = self._load(key)
        parent.sources[key] = text
        if text is None:
            if optional:
                parent.includes[key] = None
                return
            if self.uploading:
                parent.includes[key] = None
                checker.warn(f"included {location} script '{name}' does not exist "
                             "(ignored during upload)", cmd)
                return
            raise checker.error(f"included {location} script '{name}' does not exist", cmd)
        if len(self.included) >= self.limits.max_includes:
            raise checker.error(f"failed to include script '{name}': no more than "
                                f"{self.limits.max_includes} includes allowed", cmd)
        try:
            compiled = self.script(text, key, chain)
        except SieveSyntaxError as e:
            raise checker.error(f"in included {location} script '{name}': {e}", cmd) from None
        parent.includes[key] = compiled
        parent.warnings.extend(f"{name}: {w}" for w in compiled.warnings)

    def _load(self, key: Key) -> str | bytes | None:
        if self.loader is None:
            return None
        location, name = key
        return self.loader.global_(name) if location == "global" else self.loader.personal(name)


def compile(
    text: str | bytes,
    limits: SieveLimits | None = None,
    *,
    loader: ScriptLoader | None = None,
    uploading: bool = False,
    name: str = "",
) -> Script:
    """Compile a script (and what it includes); raises SieveSyntaxError with line and column.

    ``name`` is the script's own name among the mailbox's scripts, so that a script that
    includes itself is seen as a loop.
    """
    compiler = _Compiler(limits or SieveLimits(), loader, uploading)
    return compiler.script(text, ("personal", name), [])


def up_to_date(script: Script, loader: ScriptLoader | None) -> bool:
    """Whether every script ``script`` includes still has the text it was compiled from
    (a cache of compiled scripts asks this before it reuses one)."""
    todo, seen = [script], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for (location, name), text in current.sources.items():
            found = None
            if loader is not None:
                found = loader.global_(name) if location == "global" else loader.personal(name)
            if found != text:
                return False
        todo.extend(s for s in current.includes.values() if s is not None)
    return True
