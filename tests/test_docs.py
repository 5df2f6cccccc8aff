"""The reference pages cover what the program has: every configuration key, every command.
A key or command added without its line in docs/ fails here."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import BaseModel

from lmtpd.cli import main
from lmtpd.config import Config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def config_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(config_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


def command_paths(group: click.Group = main, prefix: str = "lmtpd") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_configuration_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [key for key in config_keys() if f"`{key}`" not in text]
    assert missing == []


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    missing = [path for path in command_paths() if path not in text]
    assert missing == []


def test_the_docs_stand_alone() -> None:
    pages = [ROOT / "README.md", *DOCS.glob("*.md"), *(ROOT / "contrib").rglob("*.md")]
    for page in pages:
        text = page.read_text()
        for word in ("SPEC", "../shared", "FIELD-NOTES", "DESIGN.md"):
            assert word not in text, f"{page.name} mentions {word}"
