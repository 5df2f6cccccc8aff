"""RFC 5229 variables: ``${name}`` expansion, match variables and ``set`` modifiers."""

from __future__ import annotations

import re

from .limits import SieveLimits

# a variable reference; anything else between ${ and } is plain text (RFC 5229 3)
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[0-9]+)\}")


_UPPER_ASCII = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = str.maketrans(_UPPER_ASCII, _UPPER_ASCII.lower())
_UPPER = str.maketrans(_UPPER_ASCII.lower(), _UPPER_ASCII)


class LimitExceeded(Exception):
    """A resource limit was hit while running a script."""


class Variables:
    """One script's variables, and the global ones it shares with the scripts it includes.

    A name declared with the ``global`` command (RFC 6609 5), or written ``global.name``, lives
    in ``shared``, the one dictionary every script of a run sees; any other name is local to
    the script. Match variables (``${1}``) are the script's own.
    """

    def __init__(
        self,
        limits: SieveLimits,
        shared: dict[str, str] | None = None,
        global_names: frozenset[str] = frozenset(),
    ) -> None:
        self.limits = limits
        self.values: dict[str, str] = {}
        self.shared: dict[str, str] = {} if shared is None else shared
        self.global_names = global_names
        self.match: list[str] = []

    def _slot(self, name: str) -> tuple[dict[str, str], str] | None:
        key = name.lower()
        namespace, dot, rest = key.partition(".")
        if dot:
            # only the "global" namespace exists; any other expands to nothing
            return (self.shared, rest) if namespace == "global" else None
        return (self.shared if key in self.global_names else self.values), key

    def set_match(self, captures: list[str]) -> None:
        # Pigeonhole cuts long match values to the variable size limit instead of failing
        size = self.limits.max_variable_size
        self.match = [c[:size] for c in captures[:10]]

    def set(self, name: str, value: str) -> None:
        if len(value) > self.limits.max_variable_size:
            raise LimitExceeded(
                f"variable '{name}' would be longer than {self.limits.max_variable_size} characters"
            )
        slot = self._slot(name)
        if slot is None:
            return
        store, key = slot
        if key not in store and len(store) >= self.limits.max_variables:
            raise LimitExceeded(f"more than {self.limits.max_variables} variables")
        store[key] = value

    def get(self, name: str) -> str:
        slot = self._slot(name)
        if slot is None:
            return ""
        store, key = slot
        return store.get(key, "")

    def expand(self, s: str) -> str:
        if "${" not in s:
            return s
        budget = self.limits.max_script_size
        out: list[str] = []
        total = 0
        pos = 0
        for m in REFERENCE.finditer(s):
            ref = m.group(1)
            if ref.isdigit():
                idx = int(ref)
                value = self.match[idx] if idx < len(self.match) else ""
            else:
                value = self.get(ref)
            piece = s[pos : m.start()]
            out.append(piece)
            out.append(value)
            total += len(piece) + len(value)
            if total > budget:
                raise LimitExceeded(f"expanded string is longer than {budget} characters")
            pos = m.end()
        out.append(s[pos:])
        return "".join(out)


# RFC 5229 4.1: modifiers by precedence; only one per precedence level is allowed
SET_MODIFIERS = {
    "lower": 40,
    "upper": 40,
    "lowerfirst": 30,
    "upperfirst": 30,
    "quotewildcard": 20,
    "length": 10,
}


def apply_modifiers(value: str, modifiers: list[str]) -> str:
    """Apply set modifiers from the highest precedence to the lowest (RFC 5229 4.1)."""
    order = list(SET_MODIFIERS)
    for mod in sorted(modifiers, key=order.index):
        # case changes touch ASCII letters only, as Pigeonhole does
        if mod == "lower":
            value = value.translate(_LOWER)
        elif mod == "upper":
            value = value.translate(_UPPER)
        elif mod == "lowerfirst":
            value = value[:1].translate(_LOWER) + value[1:]
        elif mod == "upperfirst":
            value = value[:1].translate(_UPPER) + value[1:]
        elif mod == "quotewildcard":
            value = re.sub(r"([*?\\])", r"\\\1", value)
        elif mod == "length":
            value = str(len(value))
    return value
