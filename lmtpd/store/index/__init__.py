"""The SQLite index: schema and every query. Nothing else in lmtpd speaks SQL.

Account tables (mailboxes, aliases, sieve_scripts) and memories (duplicates, vacation, login
throttle, the delivery trace) are authoritative. The `messages` table and the `usage`
counters are a cache of the Maildirs that `lmtpd reindex` rebuilds.
"""

from __future__ import annotations

from lmtpd.store.index.accounts import AccountQueries
from lmtpd.store.index.memories import MemoryQueries
from lmtpd.store.index.messages import MessageQueries
from lmtpd.store.index.rows import (
    ActiveScriptError,
    DuplicateError,
    IndexFailure,
    MailboxRow,
    MessageMeta,
    MessageRow,
    NotFoundError,
    NotRecorded,
    ScriptCountError,
    ScriptRow,
)
from lmtpd.store.index.schema import SCHEMA_VERSION
from lmtpd.store.index.scripts import ScriptQueries
from lmtpd.store.index.trace import TraceBatch, TraceQueries

__all__ = [
    "SCHEMA_VERSION",
    "ActiveScriptError",
    "DuplicateError",
    "Index",
    "IndexFailure",
    "MailboxRow",
    "MessageMeta",
    "MessageRow",
    "NotFoundError",
    "NotRecorded",
    "ScriptCountError",
    "ScriptRow",
    "TraceBatch",
]


class Index(AccountQueries, ScriptQueries, MessageQueries, MemoryQueries, TraceQueries):
    """One connection to the index with every query; one thread at a time."""
