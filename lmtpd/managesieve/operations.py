"""What a ManageSieve client can ask of its mailbox's scripts, as plain records."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ListScripts:
    pass


@dataclass(frozen=True)
class GetScript:
    name: str


@dataclass(frozen=True)
class PutScript:
    name: str
    text: str = field(repr=False)


@dataclass(frozen=True)
class CheckScript:
    text: str = field(repr=False)


@dataclass(frozen=True)
class SetActive:
    name: str | None  # None: no script active


@dataclass(frozen=True)
class DeleteScript:
    name: str


@dataclass(frozen=True)
class RenameScript:
    old: str
    new: str


@dataclass(frozen=True)
class HaveSpace:
    name: str
    size: int


Operation = (ListScripts | GetScript | PutScript | CheckScript | SetActive | DeleteScript
             | RenameScript | HaveSpace)
