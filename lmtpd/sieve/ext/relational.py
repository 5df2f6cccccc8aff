"""RFC 5231 relational: the :count and :value match types, and the i;ascii-numeric comparator."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..match import Comparator, MatchError, MatchType
from ..spec import Extension

OPERATORS: dict[str, Callable[[int], bool]] = {
    "gt": lambda c: c > 0,
    "ge": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "le": lambda c: c <= 0,
    "eq": lambda c: c == 0,
    "ne": lambda c: c != 0,
}


def _check(comparator: Comparator, operator: object, keys: Sequence[str]) -> None:
    del comparator, keys
    # a constant, lower-case operator: Pigeonhole refuses "GT" and "${op}"
    if operator not in OPERATORS:
        raise MatchError(
            'the relational match type requires one of "gt", "ge", "lt", "le", "eq" or '
            f'"ne", but "{operator}" was found'
        )


def _relation(value: str, key: str, comparator: Comparator, operator: object,
              _deadline: float | None = None) -> list[str] | None:
    holds = OPERATORS[str(operator)](comparator.compare(value, key))
    return [] if holds else None


COUNT = MatchType("count", _relation, ext="relational", argument=True, count=True, check=_check)
VALUE = MatchType("value", _relation, ext="relational", argument=True, check=_check)
RELATIONAL = Extension("relational", capabilities=("comparator-i;ascii-numeric",))
