"""Compile-time checks: known commands and tests, their arguments, tests and blocks, ``require``.

Pigeonhole refuses all of these when a script is compiled, so we do too: a script that
passes here only fails at run time for reasons that depend on the message. The shape of
every command and test comes from its ``Spec``; what goes beyond the shape is the spec's own
``check``, in its extension module.
"""

from __future__ import annotations

from collections.abc import Callable

from .ast import Argument, Command, Node, SieveSyntaxError, StringList, Tag
from .ast import Number as NumberArg
from .limits import SieveLimits
from .match import BUILTIN_COMPARATORS, COMPARATORS, MatchError
from .spec import Registry, Spec, StringDecoder
from .variables import REFERENCE

# include :personal "x" and :global "x": (checker, node, location, name, once, optional)
IncludeHook = Callable[["Checker", Command, str, str, bool, bool], None]


def _error(message: str, node: Node | Argument) -> SieveSyntaxError:
    return SieveSyntaxError(message, node.line, node.column)


class Checker:
    """The state of one script's validation, and what an extension's ``check`` may ask."""

    def __init__(
        self,
        registry: Registry,
        requires: frozenset[str],
        include: IncludeHook | None = None,
        limits: SieveLimits | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits or SieveLimits()
        # what required extensions do to every string first (encoded-character)
        self.decoders = [d for name, d in registry.string_decoders.items() if name in requires]
        self.requires = requires
        self.variables = "variables" in requires
        self.include = include
        self.warnings: list[str] = []
        self.globals: set[str] = set()  # names declared with the "global" command
        self.locals: set[str] = set()  # names set or referenced as local variables
        self.loop_names: list[str] = []  # foreverypart :name of the enclosing loops
        self.loops = 0  # foreverypart loops around the node being checked

    def has(self, extension: str) -> bool:
        return extension in self.requires

    def constant(self, s: str) -> bool:
        """False when the string refers to a variable, so it is only known at run time."""
        return not (self.variables and REFERENCE.search(s) is not None)

    def error(self, message: str, node: Node | Argument) -> SieveSyntaxError:
        return _error(message, node)

    def warn(self, message: str, node: Node | Argument) -> None:
        self.warnings.append(f"line {node.line}: {message}")

    # --- blocks ------------------------------------------------------------------------

    def block(self, commands: list[Command], top: bool = False) -> None:
        prev: str | None = None
        for cmd in commands:
            if cmd.name == "require" and not (top and prev in (None, "require")):
                raise _error(
                    "require command can only be placed at top level "
                    "at the beginning of the file", cmd,
                )
            if cmd.name in ("elsif", "else") and prev not in ("if", "elsif"):
                raise _error(f"{cmd.name} command must follow an if or elsif command", cmd)
            self.node(cmd, "command")
            prev = cmd.name

    def node(self, node: Node, kind: str) -> None:
        table = self.registry.commands if kind == "command" else self.registry.tests
        spec = table.get(node.name)
        if spec is None or (spec.ext is not None and not self.has(spec.ext)):
            raise _error(f"unknown {kind} '{node.name}'", node)
        self._shape(node, spec, kind)
        for decode in self.decoders:
            node.args = [_decoded(a, decode) for a in node.args]
        bind(self, node, spec, kind)
        if _takes_match(spec):
            self._match(node)
        self._note_variables(node)
        if spec.check is not None:
            spec.check(self, node)
        for sub in node.tests:
            self.node(sub, "test")
        if isinstance(node, Command) and node.block is not None:
            self._inner_block(node, spec)

    def _inner_block(self, cmd: Command, spec: Spec) -> None:
        assert cmd.block is not None
        if not spec.loop:
            self.block(cmd.block)
            return
        self.loops += 1
        self.loop_names.append(str(cmd.tags.get("name", "")))
        try:
            self.block(cmd.block)
        finally:
            self.loops -= 1
            self.loop_names.pop()

    def _shape(self, node: Node, spec: Spec, kind: str) -> None:
        """Sub-tests and block: what the command takes (sieve-validator.c's rules)."""
        what = f"the {node.name} {kind}"
        if spec.subtests == "none" and node.tests:
            first = node.tests[0].name
            if first in self.registry.tests:
                raise _error(f"{what} accepts no sub-tests, but tests are specified", node)
            if first in spec.tags:
                raise _error(f"missing colon ':' before ':{first}' tag in {what}", node)
            # "require "x" fileinto "A";" reads as a command followed by a test
            raise _error(f"missing semicolon ';' after {what}", node)
        if spec.subtests == "one" and (len(node.tests) != 1 or node.test_list):
            found = "none is" if not node.tests else "a list of tests is"
            raise _error(f"{what} requires one sub-test, but {found} specified", node)
        if spec.subtests == "list" and not node.test_list:
            found = "none is" if not node.tests else "a single test is"
            raise _error(f"{what} requires a list of sub-tests, but {found} specified", node)
        if not isinstance(node, Command):
            return
        if spec.block == "required" and node.block is None:
            raise _error(f"{what} requires a command block, but it is missing", node)
        if spec.block == "none" and node.block is not None:
            raise _error(
                f"{what} does not accept a command block, but one is specified anyway", node
            )

    def _match(self, node: Node) -> None:
        """Comparator and match type, checked together (sieve-match-types.c)."""
        name = str(node.tags.get("comparator", "i;ascii-casemap"))
        comparator = COMPARATORS.get(name)
        if comparator is None or (
            name not in BUILTIN_COMPARATORS and not self.has(f"comparator-{name}")
        ):
            raise _error(f"unknown comparator '{name}'", node)
        match = node.tags.get("match", "is")
        match_name, argument = match if isinstance(match, tuple) else (match, None)
        match_type = self.registry.match_types[str(match_name)]
        if match_type.substring and not comparator.substring:
            raise _error(
                f"the specified {name} comparator does not support sub-string matching "
                f"as required by the :{match_name} match type", node,
            )
        keys = node.positional[-1] if node.positional else []
        assert isinstance(keys, list)
        if match_type.check is not None:
            try:
                match_type.check(comparator, argument, [k for k in keys if self.constant(k)])
            except MatchError as e:
                raise _error(str(e), node) from None

    def _note_variables(self, node: Node) -> None:
        if not self.variables:
            return
        for arg in node.args:
            if isinstance(arg, StringList):
                for value in arg.values:
                    for m in REFERENCE.finditer(value):
                        ref = m.group(1).lower()
                        if not ref.isdigit() and "." not in ref and ref not in self.globals:
                            self.locals.add(ref)


def _decoded(arg: Argument, decode: StringDecoder) -> Argument:
    if not isinstance(arg, StringList):
        return arg
    try:
        values = tuple(decode(v) for v in arg.values)
    except ValueError as e:
        raise _error(str(e), arg) from None
    return StringList(values, arg.is_list, arg.line, arg.column)


def _takes_match(spec: Spec) -> bool:
    return "comparator" in spec.tags or any(t.slot == "match" for t in spec.tags.values())


def bind(checker: Checker, node: Node, spec: Spec, kind: str) -> None:
    """Sort arguments into tags and positional values, checking every one of them."""
    tags: dict[str, object] = {}
    args = node.args
    i = 0
    while i < len(args) and isinstance(args[i], Tag):
        tag = args[i]
        assert isinstance(tag, Tag)
        tdef = spec.tags.get(tag.name)
        if tdef is None or (tdef.ext is not None and not checker.has(tdef.ext)):
            raise _error(f"unknown tagged argument ':{tag.name}' for the {node.name} {kind}", tag)
        key = tdef.slot or tag.name
        if key in tags:
            raise _error(
                f"encountered duplicate :{tag.name} argument for the {node.name} {kind}", tag
            )
        i += 1
        if tdef.arg is None:
            tags[key] = tag.name if tdef.slot else True
            continue
        value = _take(args, i, tdef.arg, node, tag)
        i += 1
        tags[key] = (tag.name, value) if tdef.slot else value
    rest = args[i:]
    for extra in rest:
        if isinstance(extra, Tag):
            raise _error(
                f"encountered an unexpected tagged argument ':{extra.name}' while validating "
                f"positional arguments for the {node.name} {kind}", extra,
            )
    kinds = list(spec.positional)
    if spec.var_leading and checker.variables and len(rest) == len(kinds) + 1:
        kinds.insert(0, spec.var_leading)
    if len(kinds) <= len(rest) <= len(kinds) + len(spec.optional):
        kinds += spec.optional[: len(rest) - len(kinds)]
    else:
        raise _error(
            f"the {node.name} {kind} requires {len(kinds)} positional argument(s), "
            f"but {len(rest)} is/are specified", node,
        )
    node.tags = tags
    node.positional = [_take(rest, j, want, node, node) for j, want in enumerate(kinds)]


def _take(args: list[Argument], i: int, want: str, node: Node, at: Node | Argument) -> object:
    if i >= len(args):
        raise _error(f"missing {want} argument for the {node.name} command", at)
    arg = args[i]
    if want == "number":
        if not isinstance(arg, NumberArg):
            raise _error(f"the {node.name} command expects a number here", arg)
        return arg.value
    if not isinstance(arg, StringList):
        raise _error(f"the {node.name} command expects a {want} here", arg)
    if want == "string":
        if arg.is_list:
            raise _error(f"the {node.name} command expects a string, not a string list", arg)
        return arg.values[0]
    return list(arg.values)


def validate(
    commands: list[Command],
    registry: Registry,
    include: IncludeHook | None = None,
    limits: SieveLimits | None = None,
) -> Checker:
    """Check the whole script; returns the checker (requires, warnings, global names)."""
    requires: set[str] = set()
    bootstrap = Checker(registry, frozenset(), include, limits)
    for cmd in commands:
        if cmd.name != "require":
            break
        bootstrap.node(cmd, "command")
        for capability in cmd.positional[0]:  # type: ignore[union-attr]
            if capability not in registry.capabilities:
                raise _error(f"require command: unknown Sieve capability '{capability}'",
                             cmd.args[0])
            requires.add(capability)
    checker = Checker(registry, frozenset(requires), include, limits)
    checker.block(commands, top=True)
    return checker
