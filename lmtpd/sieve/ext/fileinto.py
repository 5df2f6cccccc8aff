"""RFC 5228 4.1 fileinto, with :copy (RFC 3894), :create (RFC 5490) and :flags (RFC 5232)."""

from __future__ import annotations

from ..ast import Command
from ..runtime import Runtime
from ..spec import Extension, Spec, TagDef
from .core import store


def _run(rt: Runtime, cmd: Command) -> None:
    store(rt, rt.s(cmd.positional[0]), cmd.tags, copy=bool(cmd.tags.get("copy")))


FILEINTO = Extension(
    "fileinto",
    commands=(
        Spec(
            "fileinto", "command", ext="fileinto",
            tags={
                "flags": TagDef("stringlist", ext="imap4flags"),
                "copy": TagDef(ext="copy"),
                "create": TagDef(ext="mailbox"),
            },
            positional=("string",), run=_run,
        ),
    ),
)
COPY = Extension("copy")
