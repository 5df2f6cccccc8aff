"""Every Sieve example in the documentation compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmtpd.sieve import compile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    (path.name, block)
    for path in (ROOT / "README.md", ROOT / "docs" / "sieve.md")
    for block in re.findall(r"```sieve\n(.*?)```", path.read_text(), re.S)
]


class GlobalSpam:
    def personal(self, name: str) -> str | None:
        return None

    def global_(self, name: str) -> str | None:
        return 'require "fileinto"; fileinto "Junk";' if name == "spam" else None


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(("document", "text"), EXAMPLES)
def test_example_compiles(document: str, text: str) -> None:
    compile(text, loader=GlobalSpam())
