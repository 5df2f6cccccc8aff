"""Compile-time checks: known commands and tests, their arguments, and ``require``.

Pigeonhole refuses all of these when a script is compiled, so we do too: a script
that validates here never fails at run time for a reason visible in its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .parser import Argument, Command, Number, SieveSyntaxError, StringList, Tag, Test

SUPPORTED_EXTENSIONS = frozenset(
    {
        "fileinto",
        "reject",
        "ereject",
        "envelope",
        "subaddress",
        "imap4flags",
        "copy",
        "mailbox",
        "body",
        "variables",
        "vacation",
        "comparator-i;octet",
        "comparator-i;ascii-casemap",
    }
)

COMPARATORS = frozenset({"i;octet", "i;ascii-casemap"})

# Pigeonhole's list of header fields the address test accepts (tst-address.c)
ADDRESS_HEADERS = frozenset(
    [
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "resent-from",
        "resent-to",
        "reply-to",
        "resent-reply-to",
        "resent-sender",
        "resent-cc",
        "resent-bcc",
        "for-approval",
        "for-handling",
        "for-comment",
        "apparently-to",
        "errors-to",
        "delivered-to",
        "return-receipt-to",
        "x-admin",
        "read-receipt-to",
        "x-confirm-reading-to",
        "return-receipt-requested",
        "registered-mail-reply-requested-by",
        "mail-followup-to",
        "mail-reply-to",
        "abuse-reports-to",
        "x-complaints-to",
        "x-report-abuse-to",
        "x-beenthere",
        "x-original-to",
    ]
)

MATCH_TYPES = ("is", "contains", "matches")
ADDRESS_PARTS = ("all", "localpart", "domain", "user", "detail")
BODY_TRANSFORMS = ("raw", "content", "text")
# RFC 5229 4.1: modifiers by precedence; only one per precedence level is allowed
SET_MODIFIERS = {
    "lower": 40,
    "upper": 40,
    "lowerfirst": 30,
    "upperfirst": 30,
    "quotewildcard": 20,
    "length": 10,
}
_TAG_EXTENSION = {"user": "subaddress", "detail": "subaddress"}


@dataclass(frozen=True)
class Spec:
    ext: str | None = None
    tags: dict[str, str | None] = field(default_factory=dict)  # tag -> argument kind
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # slot -> exclusive tags
    positional: tuple[str, ...] = ()
    # with "variables", an optional leading argument naming variables (imap4flags)
    var_leading: str | None = None
    tag_ext: dict[str, str] = field(default_factory=dict)


_MATCH = {"match": MATCH_TYPES}
_COMP = {"comparator": "string"}

COMMANDS: dict[str, Spec] = {
    "require": Spec(positional=("stringlist",)),
    "if": Spec(),
    "elsif": Spec(),
    "else": Spec(),
    "stop": Spec(),
    "keep": Spec(tags={"flags": "stringlist"}, tag_ext={"flags": "imap4flags"}),
    "discard": Spec(),
    "fileinto": Spec(
        ext="fileinto",
        tags={"flags": "stringlist", "copy": None, "create": None},
        positional=("string",),
        tag_ext={"flags": "imap4flags", "copy": "copy", "create": "mailbox"},
    ),
    "redirect": Spec(tags={"copy": None}, positional=("string",), tag_ext={"copy": "copy"}),
    "reject": Spec(ext="reject", positional=("string",)),
    "ereject": Spec(ext="ereject", positional=("string",)),
    "setflag": Spec(ext="imap4flags", positional=("stringlist",), var_leading="string"),
    "addflag": Spec(ext="imap4flags", positional=("stringlist",), var_leading="string"),
    "removeflag": Spec(ext="imap4flags", positional=("stringlist",), var_leading="string"),
    "set": Spec(
        ext="variables",
        tags=dict.fromkeys(SET_MODIFIERS),
        positional=("string", "string"),
    ),
    "vacation": Spec(
        ext="vacation",
        tags={
            "days": "number",
            "subject": "string",
            "from": "string",
            "addresses": "stringlist",
            "mime": None,
            "handle": "string",
        },
        positional=("string",),
    ),
}

TESTS: dict[str, Spec] = {
    "address": Spec(
        tags=_COMP,
        groups={**_MATCH, "part": ADDRESS_PARTS},
        positional=("stringlist", "stringlist"),
    ),
    "envelope": Spec(
        ext="envelope",
        tags=_COMP,
        groups={**_MATCH, "part": ADDRESS_PARTS},
        positional=("stringlist", "stringlist"),
    ),
    "header": Spec(tags=_COMP, groups=_MATCH, positional=("stringlist", "stringlist")),
    "exists": Spec(positional=("stringlist",)),
    "size": Spec(groups={"size": ("over", "under")}, positional=("number",)),
    "allof": Spec(),
    "anyof": Spec(),
    "not": Spec(),
    "true": Spec(),
    "false": Spec(),
    "hasflag": Spec(
        ext="imap4flags",
        tags=_COMP,
        groups=_MATCH,
        positional=("stringlist",),
        var_leading="stringlist",
    ),
    "mailboxexists": Spec(ext="mailbox", positional=("stringlist",)),
    "body": Spec(
        ext="body",
        tags={**_COMP, "content": "stringlist"},
        groups={**_MATCH, "transform": BODY_TRANSFORMS},
        positional=("stringlist",),
    ),
    "string": Spec(
        ext="variables", tags=_COMP, groups=_MATCH, positional=("stringlist", "stringlist")
    ),
}

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ADDRESS = re.compile(r"[^\s@<>()\",;]+@[^\s@<>()\",;]+\Z")
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")


def _err(message: str, node: Command | Test | Argument) -> SieveSyntaxError:
    return SieveSyntaxError(message, node.line, node.column)


def validate(commands: list[Command]) -> frozenset[str]:
    """Check the whole script; returns the set of required extensions."""
    requires: set[str] = set()
    seen_other = False
    for cmd in commands:
        if cmd.name == "require":
            if seen_other:
                raise _err("require command must come before any other command", cmd)
            _bind(cmd, COMMANDS["require"], requires, "command")
            for ext in cmd.positional[0]:  # type: ignore[union-attr]
                if ext not in SUPPORTED_EXTENSIONS:
                    raise _err(f"require: unknown Sieve capability '{ext}'", cmd.args[0])
                requires.add(ext)
        else:
            seen_other = True
    ctx = _Context(frozenset(requires))
    ctx.block(commands, top=True)
    return frozenset(requires)


class _Context:
    def __init__(self, requires: frozenset[str]) -> None:
        self.requires = requires
        self.variables = "variables" in requires

    def block(self, commands: list[Command], top: bool = False) -> None:
        prev: str | None = None
        for cmd in commands:
            if cmd.name == "require":
                if not top:
                    raise _err("require command can only be used at the top level", cmd)
                prev = cmd.name
                continue
            if cmd.name in ("elsif", "else") and prev not in ("if", "elsif"):
                raise _err(f"'{cmd.name}' must follow 'if' or 'elsif'", cmd)
            self.command(cmd)
            prev = cmd.name

    def command(self, cmd: Command) -> None:
        spec = COMMANDS.get(cmd.name)
        if spec is None or (spec.ext and spec.ext not in self.requires):
            raise _err(f"unknown command '{cmd.name}'", cmd)
        if cmd.name in ("if", "elsif"):
            if len(cmd.args) or len(cmd.tests) != 1:
                raise _err(f"'{cmd.name}' needs exactly one test", cmd)
            if cmd.block is None:
                raise _err(f"'{cmd.name}' needs a block", cmd)
            self.test(cmd.tests[0])
            self.block(cmd.block)
            return
        if cmd.name == "else":
            if cmd.args or cmd.tests:
                raise _err("'else' takes no arguments or tests", cmd)
            if cmd.block is None:
                raise _err("'else' needs a block", cmd)
            self.block(cmd.block)
            return
        if cmd.block is not None:
            raise _err(f"command '{cmd.name}' does not take a block", cmd)
        if cmd.tests:
            raise _err(f"command '{cmd.name}' does not take tests", cmd)
        _bind(cmd, spec, self.requires, "command")
        self.check_command(cmd)

    def test(self, test: Test) -> None:
        spec = TESTS.get(test.name)
        if spec is None or (spec.ext and spec.ext not in self.requires):
            raise _err(f"unknown test '{test.name}'", test)
        if test.name in ("allof", "anyof"):
            if test.args or not test.tests:
                raise _err(f"'{test.name}' needs a list of tests", test)
        elif test.name == "not":
            if test.args or len(test.tests) != 1:
                raise _err("'not' needs exactly one test", test)
        elif test.tests:
            raise _err(f"test '{test.name}' does not take tests", test)
        for sub in test.tests:
            self.test(sub)
        _bind(test, spec, self.requires, "test")
        self.check_test(test)

    def _constant(self, s: str) -> bool:
        # with "variables", a string holding ${...} is only known at run time
        return not (self.variables and "${" in s)

    def check_command(self, cmd: Command) -> None:
        pos = cmd.positional
        if cmd.name == "redirect":
            addr = pos[0]
            assert isinstance(addr, str)
            if self._constant(addr) and not _ADDRESS.match(addr.strip().strip("<>")):
                raise _err(f"specified redirect address '{addr}' is invalid", cmd)
        elif cmd.name == "fileinto":
            folder = pos[0]
            assert isinstance(folder, str)
            if not folder:
                raise _err("fileinto: the folder name is empty", cmd)
        elif cmd.name == "set":
            name = pos[0]
            assert isinstance(name, str)
            if not _VAR_NAME.match(name):
                raise _err(f"set: invalid variable name '{name}'", cmd)
            levels = [SET_MODIFIERS[t] for t in cmd.tags]
            if len(levels) != len(set(levels)):
                raise _err("set: two modifiers of the same precedence", cmd)
        elif cmd.name in ("setflag", "addflag", "removeflag") and len(pos) == 2:
            name = pos[0]
            assert isinstance(name, str)
            if not _VAR_NAME.match(name):
                raise _err(f"{cmd.name}: invalid variable name '{name}'", cmd)
        elif cmd.name == "vacation":
            sender = cmd.tags.get("from")
            if (
                isinstance(sender, str)
                and self._constant(sender)
                and not _ADDRESS.search(sender.replace(">", " ").replace("<", " ").strip())
                and "@" not in sender
            ):
                raise _err(f"vacation: invalid :from address '{sender}'", cmd)

    def check_test(self, test: Test) -> None:
        comparator = test.tags.get("comparator")
        if comparator is not None and comparator not in COMPARATORS:
            raise _err(f"unknown comparator '{comparator}'", test)
        if test.name == "address":
            for name in test.positional[0]:  # type: ignore[union-attr]
                if self._constant(name) and name.lower() not in ADDRESS_HEADERS:
                    raise _err(
                        f"specified header '{name}' is not allowed for the address test", test
                    )
        if test.name in ("address", "header", "exists"):
            for name in test.positional[0]:  # type: ignore[union-attr]
                if self._constant(name) and not _HEADER_NAME.match(name):
                    raise _err(f"invalid header name '{name}'", test)
        if test.name == "envelope":
            for part in test.positional[0]:  # type: ignore[union-attr]
                if self._constant(part) and part.lower() not in ("from", "to"):
                    raise _err(f"specified envelope part '{part}' is not supported", test)
        if test.name == "size" and "size" not in test.tags:
            raise _err("size test needs :over or :under", test)
        if test.name == "hasflag" and len(test.positional) == 2:
            for name in test.positional[0]:  # type: ignore[union-attr]
                if not _VAR_NAME.match(name):
                    raise _err(f"hasflag: invalid variable name '{name}'", test)


def _bind(node: Command | Test, spec: Spec, requires: frozenset[str] | set[str], kind: str) -> None:
    """Sort arguments into tags and positional values, checking every one of them."""
    tags: dict[str, object] = {}
    positional: list[object] = []
    args = node.args
    i = 0
    slot_of = {t: slot for slot, names in spec.groups.items() for t in names}
    while i < len(args):
        arg = args[i]
        if not isinstance(arg, Tag):
            break
        name = arg.name
        need = spec.tag_ext.get(name) or _TAG_EXTENSION.get(name)
        if name in slot_of:
            slot = slot_of[name]
            if need and need not in requires:
                raise _err(f"unknown tagged argument ':{name}' for {kind} '{node.name}'", arg)
            if slot in tags:
                raise _err(
                    f"{kind} '{node.name}' takes only one of :{'/:'.join(spec.groups[slot])}", arg
                )
            if slot == "transform" and name == "content":
                i += 1
                value = _take(args, i, "stringlist", node, arg)
                tags[slot] = ("content", value)
            else:
                tags[slot] = name
            i += 1
            continue
        if name not in spec.tags or (need and need not in requires):
            raise _err(f"unknown tagged argument ':{name}' for {kind} '{node.name}'", arg)
        if name in tags:
            raise _err(f"tagged argument ':{name}' given twice", arg)
        argkind = spec.tags[name]
        if argkind is None:
            tags[name] = True
            i += 1
        else:
            i += 1
            tags[name] = _take(args, i, argkind, node, arg)
            i += 1
    rest = args[i:]
    for extra in rest:
        if isinstance(extra, Tag):
            raise _err(f"tagged argument ':{extra.name}' must come before the others", extra)
    kinds = list(spec.positional)
    if spec.var_leading and "variables" in requires and len(rest) == len(kinds) + 1:
        kinds.insert(0, spec.var_leading)
    if len(rest) != len(kinds):
        raise _err(
            f"{kind} '{node.name}' expects {len(kinds)} positional argument(s), got {len(rest)}",
            node,
        )
    for j, want in enumerate(kinds):
        positional.append(_take(rest, j, want, node, node))
    node.tags = tags
    node.positional = positional


def _take(
    args: list[Argument], i: int, want: str, node: Command | Test, at: Command | Test | Argument
) -> object:
    if i >= len(args):
        raise _err(f"missing {want} argument in '{node.name}'", at)
    arg = args[i]
    if want == "number":
        if not isinstance(arg, Number):
            raise _err(f"'{node.name}' expects a number here", arg)
        return arg.value
    if not isinstance(arg, StringList):
        raise _err(f"'{node.name}' expects a {want} here", arg)
    if want == "string":
        if arg.is_list:
            raise _err(f"'{node.name}' expects a string, not a string list", arg)
        return arg.values[0]
    return list(arg.values)
