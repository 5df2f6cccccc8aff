"""RFC 5228 2.4.2.4 encoded-character: ``${hex:..}`` and ``${unicode:..}`` in strings.

The strings of a script that requires it are decoded once, when it is compiled, before
anything else reads them (a decoded "${" can then start a variable reference).
"""

from __future__ import annotations

import re

from ..spec import Extension

_ENCODED = re.compile(r"\$\{([A-Za-z]*):")
_HEX_PAIR = re.compile(r"[ \t\r\n]*([0-9A-Fa-f]{1,2})(?![0-9A-Fa-f])")
_HEX_ANY = re.compile(r"[ \t\r\n]*([0-9A-Fa-f]+)")
_CLOSE = re.compile(r"[ \t\r\n]*\}")


def decode_encoded(s: str) -> str:
    """Replace ``${hex:..}`` and ``${unicode:..}``; anything not well formed stays as it is.

    As in Pigeonhole, the encoding name may be abbreviated (``${h:41}``, even ``${:41}``
    is hex), and an out-of-range code point in a well-formed ``${unicode:..}`` is an error
    (ValueError).
    """
    if "${" not in s:
        return s
    out: list[str] = []
    pos = 0
    search = 0
    while (m := _ENCODED.search(s, search)) is not None:
        kind = m.group(1).lower()
        decoded, end = _decode_run(s, m.end(), kind)
        if decoded is None:
            search = m.start() + 2
            continue
        out.append(s[pos : m.start()])
        out.append(decoded)
        pos = search = end
    out.append(s[pos:])
    return "".join(out)


def _decode_run(s: str, start: int, kind: str) -> tuple[str | None, int]:
    hexadecimal = "hex".startswith(kind)
    if not hexadecimal and not "unicode".startswith(kind):
        return None, start
    pattern = _HEX_PAIR if hexadecimal else _HEX_ANY
    items: list[int] = []
    pos = start
    while (m := pattern.match(s, pos)) is not None:
        items.append(int(m.group(1), 16))
        pos = m.end()
    close = _CLOSE.match(s, pos)
    if not items or close is None:
        return None, start
    if hexadecimal:
        return bytes(items).decode("utf-8", "replace"), close.end()
    for code in items:
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise ValueError(
                f"invalid unicode character 0x{code:08x} in encoded character substitution"
            )
    return "".join(chr(c) for c in items), close.end()


ENCODED_CHARACTER = Extension("encoded-character", decode_strings=decode_encoded)
