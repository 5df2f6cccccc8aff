"""RFC 5173 body test: the text each transform (:raw, :content, :text) exposes."""

from __future__ import annotations

import email.message
import re

from ..ast import Test
from ..message import MessageContext
from ..runtime import Runtime
from ..spec import Extension, Spec, TagDef
from .core import MATCHING

_TAG = re.compile(r"<[^>]*>")


def _crlf(s: str) -> str:
    return re.sub(r"\r?\n", "\r\n", s)


def _decoded(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        text = payload.decode(charset, "replace")
    except LookupError:
        text = payload.decode("utf-8", "replace")
    return _crlf(text)


def _type_matches(ctype: str, wanted: list[str]) -> bool:
    main = ctype.split("/", 1)[0]
    for w in wanted:
        w = w.lower()
        if w == "" or w == ctype or ("/" not in w and w == main):
            return True
    return False


def body_texts(msg: MessageContext, transform: object) -> list[str]:
    """The strings a body test compares its keys against."""
    if transform == "raw":
        return [msg.body_crlf]
    if isinstance(transform, tuple) and transform[0] == "content":
        wanted: list[str] = list(transform[1])
        out: list[str] = []
        for part in msg.parsed.walk():
            ctype = part.get_content_type().lower()
            if part.is_multipart():
                # RFC 5173 5.2: a multipart matches only through its prologue/epilogue
                if _type_matches(ctype, wanted) and any(w != "" for w in wanted):
                    out.append(_crlf((part.preamble or "") + (part.epilogue or "")))
                continue
            if _type_matches(ctype, wanted):
                out.append(_decoded(part))
        return out
    # :text (the default): the textual parts, decoded, with HTML reduced to its text
    texts: list[str] = []
    for part in msg.parsed.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type().lower()
        if ctype == "text/html":
            texts.append(_TAG.sub("", _decoded(part)))
        elif ctype.startswith("text/"):
            texts.append(_decoded(part))
    return texts


def _run(rt: Runtime, t: Test) -> bool:
    transform = t.tags.get("transform", "text")
    if isinstance(transform, tuple):
        transform = (transform[0], rt.sl(transform[1]))
    values = body_texts(rt.msg, transform)
    # the body test never sets match variables (RFC 5173 5)
    return rt.match(t, values, rt.sl(t.positional[0]), set_vars=False)


BODY = Extension(
    "body",
    tests=(
        Spec(
            "body", "test", ext="body",
            tags={
                **MATCHING,
                "raw": TagDef(slot="transform"),
                "text": TagDef(slot="transform"),
                "content": TagDef("stringlist", slot="transform"),
            },
            positional=("stringlist",), run=_run,
        ),
    ),
)
