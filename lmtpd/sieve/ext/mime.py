"""RFC 5703 mime and foreverypart: ``:mime`` header tests on MIME parts, the part loop, break.

The parts are the message's MIME tree in pre-order, the message itself first (as
Pigeonhole walks it). Outside a loop ``:mime`` reads the message header; inside
``foreverypart`` it reads the current part's; ``:anychild`` adds every part below it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from ..ast import Command, Test
from ..message import MimePart, decode_words
from ..runtime import BreakLoop, Runtime
from ..spec import Extension, Spec, TagDef
from ..validator import Checker

MAX_LOOP_DEPTH = 4  # SIEVE_MAX_LOOP_DEPTH
MIME_BASIC_TAGS = {"mime": TagDef(ext="mime"), "anychild": TagDef(ext="mime")}
MIME_TAGS = {
    **MIME_BASIC_TAGS,
    "type": TagDef(ext="mime", slot="mimeopt"),
    "subtype": TagDef(ext="mime", slot="mimeopt"),
    "contenttype": TagDef(ext="mime", slot="mimeopt"),
    "param": TagDef("stringlist", ext="mime", slot="mimeopt"),
}
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_CONTENT_TYPE = re.compile(rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*(;|$)")
_DISPOSITION = re.compile(rf"[ \t]*({_TOKEN})[ \t]*(;|$)")
_PARAM = re.compile(rf"[ \t]*({_TOKEN})[ \t]*=[ \t]*(\"(?:[^\"\\]|\\.)*\"|{_TOKEN})[ \t]*(;|$)")
_SECTION = re.compile(r"(.*?)\*([0-9]+)(\*?)\Z")


def check(checker: Checker, t: Test) -> None:
    for option in ("anychild", "mimeopt"):
        if option in t.tags and "mime" not in t.tags:
            name = t.tags[option]
            name = name[0] if isinstance(name, tuple) else option
            raise checker.error(
                f"the :{name} tag for the {t.name} test cannot be specified without the "
                f":mime tag", t,
            )


def _current(rt: Runtime) -> tuple[list[MimePart], int]:
    """The message's parts, and the one a :mime test reads (the message outside a loop)."""
    return rt.msg.parts, rt.mime_part or 0


def header_values(rt: Runtime, t: Test, names: list[str], decoded: bool) -> list[str]:
    """The values of ``names`` in the part(s) a ``:mime`` test reads, options applied."""
    parts, index = _current(rt)
    scope = parts[index : parts[index].end] if t.tags.get("anychild") else [parts[index]]
    option = t.tags.get("mimeopt")
    if isinstance(option, tuple):
        option = (option[0], rt.sl(option[1]))
    out: list[str] = []
    for name in names:
        key = name.lower()
        for part in scope:
            for field_name, value in part.headers:
                if field_name != key:
                    continue
                value = value.strip(" \t")
                if option is None:
                    out.append(decode_words(value) if decoded else value)
                else:
                    out.extend(_option_values(key, value, option))
    return out


def _option_values(name: str, value: str, option: object) -> list[str]:
    """:type, :subtype, :contenttype and :param read Content-Type or Content-Disposition."""
    if name == "content-type":
        m = _CONTENT_TYPE.match(value)
        content = f"{m.group(1)}/{m.group(2)}" if m else ""
    elif name == "content-disposition":
        m = _DISPOSITION.match(value)
        content = m.group(1) if m else ""
    else:
        return [""]  # any other header yields the empty string
    if m is None:
        return [""]
    if isinstance(option, tuple):  # ("param", names)
        wanted = {str(p).lower() for p in option[1]}
        params = content_params(value[m.end() :])
        return [_param_value(n, v) for n, v in params if _param_is(n, wanted)] or [""]
    main, _slash, sub = content.partition("/")
    if option == "type":
        return [main]
    if option == "subtype":
        return [sub]
    return [content]


def _param_is(name: str, wanted: set[str]) -> bool:
    lowered = name.lower()
    return lowered in wanted or (lowered.endswith("*") and lowered[:-1] in wanted)


def _param_value(name: str, value: str) -> str:
    if not name.endswith("*"):
        return value
    # RFC 2231 extended value: charset'language'percent-encoded
    parts = value.split("'", 2)
    if len(parts) != 3:
        return ""
    return unquote_to_bytes(parts[2]).decode("utf-8", "replace")


def content_params(rest: str) -> list[tuple[str, str]]:
    """Parameters after the type: plain ones in order, then RFC 2231 continuations joined
    (``name*0``, ``name*1``... become ``name``; encoded ones ``name*``)."""
    plain: list[tuple[str, str]] = []
    sections: dict[str, list[tuple[int, str, bool]]] = {}
    pos = 0
    rest = rest.lstrip(" \t;")
    while pos < len(rest) and (m := _PARAM.match(rest, pos)) is not None:
        name, value = m.group(1), m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        section = _SECTION.match(name)
        if section is not None:
            base = section.group(1)
            sections.setdefault(base, []).append(
                (int(section.group(2)), value, bool(section.group(3)))
            )
        elif name.endswith("*"):
            sections.setdefault(name[:-1], []).append((0, value, True))
        else:
            plain.append((name, value))
        pos = m.end()
    joined = []
    for base, pieces in sections.items():
        pieces.sort()
        encoded = pieces[0][2]
        joined.append((base + ("*" if encoded else ""), "".join(p[1] for p in pieces)))
    return plain + joined


# --- foreverypart and break -------------------------------------------------------------


def _check_foreverypart(checker: Checker, cmd: Command) -> None:
    if checker.loops + 1 > MAX_LOOP_DEPTH:
        raise checker.error(
            f"the nested foreverypart loop exceeds the nesting limit (<= {MAX_LOOP_DEPTH} "
            "levels)", cmd,
        )


def _check_break(checker: Checker, cmd: Command) -> None:
    name = cmd.tags.get("name")
    if name is None and not checker.loops:
        raise checker.error("the break command is not placed inside a foreverypart loop", cmd)
    if name is not None and name not in checker.loop_names:
        raise checker.error(
            f"the break command is not placed inside a foreverypart loop named `{name}'", cmd
        )


def _run_foreverypart(rt: Runtime, cmd: Command) -> None:
    """Run the block once per part: every part at the top, the parts below inside a loop."""
    parts, current = _current(rt)
    if rt.mime_part is not None:
        start, end = current + 1, parts[current].end
    else:
        start, end = 0, len(parts)
    name = cmd.tags.get("name")
    saved = rt.mime_part
    try:
        for index in range(start, end):
            rt.mime_part = index
            rt.block(cmd.block or [])
    except BreakLoop as loop:
        if loop.name is not None and loop.name != name:
            raise
    finally:
        rt.mime_part = saved


def _run_break(rt: Runtime, cmd: Command) -> None:
    name = cmd.tags.get("name")
    raise BreakLoop(str(name) if name is not None else None)


MIME = Extension("mime")
FOREVERYPART = Extension(
    "foreverypart",
    commands=(
        Spec("foreverypart", "command", ext="foreverypart",
             tags={"name": TagDef("string")}, block="required", loop=True,
             check=_check_foreverypart, run=_run_foreverypart),
        Spec("break", "command", ext="foreverypart", tags={"name": TagDef("string")},
             check=_check_break, run=_run_break),
    ),
)
