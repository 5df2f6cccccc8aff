"""The Sieve extensions lmtpd supports, one module each (as Pigeonhole has one ext-*.c each).

``REGISTRY`` is the whole language: every command, test and match type, and the
capabilities ``require`` accepts. ``SUPPORTED_EXTENSIONS`` is what ManageSieve advertises.
"""

from __future__ import annotations

from ..match import BASE_MATCH_TYPES
from ..spec import Extension, Registry, Spec
from .body import BODY
from .core import CORE
from .date import DATE
from .duplicate import DUPLICATE
from .editheader import EDITHEADER
from .encoded_character import ENCODED_CHARACTER
from .envelope import ENVELOPE, SUBADDRESS
from .environment import ENVIRONMENT
from .fileinto import COPY, FILEINTO
from .imap4flags import IMAP4FLAGS
from .include import INCLUDE
from .index import INDEX
from .mailbox import MAILBOX
from .mime import FOREVERYPART, MIME
from .regex import REGEX, REGEX_MATCH
from .reject import EREJECT, REJECT
from .relational import COUNT, RELATIONAL, VALUE
from .vacation import VACATION
from .variables import VARIABLES

EXTENSIONS: tuple[Extension, ...] = (
    FILEINTO, REJECT, EREJECT, ENVELOPE, SUBADDRESS, COPY, IMAP4FLAGS, MAILBOX, BODY,
    VARIABLES, VACATION, INCLUDE, DUPLICATE, RELATIONAL, REGEX, DATE, INDEX, EDITHEADER,
    ENCODED_CHARACTER, ENVIRONMENT, MIME, FOREVERYPART,
)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {"comparator-i;octet", "comparator-i;ascii-casemap"}
    | {e.name for e in EXTENSIONS}
    | {c for e in EXTENSIONS for c in e.capabilities}
)


def _table(specs: list[Spec]) -> dict[str, Spec]:
    table: dict[str, Spec] = {}
    for spec in specs:
        assert spec.name not in table, f"{spec.kind} {spec.name} is defined twice"
        table[spec.name] = spec
    return table


REGISTRY = Registry(
    commands=_table([s for e in (CORE, *EXTENSIONS) for s in e.commands]),
    tests=_table([s for e in (CORE, *EXTENSIONS) for s in e.tests]),
    match_types={m.name: m for m in (*BASE_MATCH_TYPES, REGEX_MATCH, COUNT, VALUE)},
    capabilities=SUPPORTED_EXTENSIONS,
    string_decoders={e.name: e.decode_strings for e in EXTENSIONS if e.decode_strings},
)
