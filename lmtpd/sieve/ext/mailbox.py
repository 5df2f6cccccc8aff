"""RFC 5490 mailbox: the mailboxexists test (fileinto's :create is in ``fileinto.py``)."""

from __future__ import annotations

from ..ast import Test
from ..runtime import Runtime
from ..spec import Extension, Spec


def _run(rt: Runtime, t: Test) -> bool:
    return all(rt.mailbox_exists(f) for f in rt.sl(t.positional[0]))


MAILBOX = Extension(
    "mailbox",
    tests=(Spec("mailboxexists", "test", ext="mailbox", positional=("stringlist",), run=_run),),
)
