"""RFC 5229 variables: ``${name}`` expansion, match variables and ``set`` modifiers."""

from __future__ import annotations

import re

from .limits import SieveLimits

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[0-9]+)\}")


_UPPER_ASCII = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = str.maketrans(_UPPER_ASCII, _UPPER_ASCII.lower())
_UPPER = str.maketrans(_UPPER_ASCII.lower(), _UPPER_ASCII)


class LimitExceeded(Exception):
    """A resource limit was hit while running a script."""


class Variables:
    def __init__(self, limits: SieveLimits) -> None:
        self.limits = limits
        self.values: dict[str, str] = {}
        self.match: list[str] = []

    def set_match(self, captures: list[str]) -> None:
        # Pigeonhole cuts long match values to the variable size limit instead of failing
        size = self.limits.max_variable_size
        self.match = [c[:size] for c in captures[:10]]

    def set(self, name: str, value: str) -> None:
        if len(value) > self.limits.max_variable_size:
            raise LimitExceeded(
                f"variable '{name}' would be longer than {self.limits.max_variable_size} characters"
            )
        key = name.lower()
        if key not in self.values and len(self.values) >= self.limits.max_variables:
            raise LimitExceeded(f"more than {self.limits.max_variables} variables")
        self.values[key] = value

    def get(self, name: str) -> str:
        return self.values.get(name.lower(), "")

    def expand(self, s: str) -> str:
        if "${" not in s:
            return s
        budget = self.limits.max_script_size
        out: list[str] = []
        total = 0
        pos = 0
        for m in _REF.finditer(s):
            ref = m.group(1)
            if ref.isdigit():
                idx = int(ref)
                value = self.match[idx] if idx < len(self.match) else ""
            elif "." in ref:
                value = ""  # no namespaces are supported; they expand to nothing
            else:
                value = self.values.get(ref.lower(), "")
            piece = s[pos : m.start()]
            out.append(piece)
            out.append(value)
            total += len(piece) + len(value)
            if total > budget:
                raise LimitExceeded(f"expanded string is longer than {budget} characters")
            pos = m.end()
        out.append(s[pos:])
        return "".join(out)


def apply_modifiers(value: str, modifiers: list[str]) -> str:
    """Apply set modifiers from the highest precedence to the lowest (RFC 5229 4.1)."""
    order = ["lower", "upper", "lowerfirst", "upperfirst", "quotewildcard", "length"]
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
