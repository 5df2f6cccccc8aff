"""What the index records of a message besides its file: Message-ID, From and Subject."""

from __future__ import annotations

import email.parser
import email.policy
from pathlib import Path

from lmtpd.store import maildir
from lmtpd.store.index import MessageMeta

HEAD_LIMIT = 64 * 1024


def parse_meta(header_bytes: bytes) -> MessageMeta:
    """Message-ID, From and Subject from a header section, tolerant of garbage."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    headers = parser.parsebytes(header_bytes)

    def get(name: str) -> str:
        value = headers.get(name)
        if value is None:
            return ""
        text = str(value) if not isinstance(value, str) else value
        return " ".join(text.split())[:998]

    return MessageMeta(message_id=get("Message-ID"), from_addr=get("From"),
                       subject=get("Subject"))


def read_meta(path: Path) -> MessageMeta:
    """The meta of a stored message file, from its first 64 KB."""
    with maildir.open_message(path) as handle:
        head = handle.read(HEAD_LIMIT)
    end = head.find(b"\n\n")
    return parse_meta(head[: end + 1] if end >= 0 else head)
