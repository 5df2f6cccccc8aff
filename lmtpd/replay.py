"""What a candidate Sieve script would have done to the mail a mailbox already holds: each
stored message run through it as delivery would run it, with nothing stored, sent or
remembered (the script runs without the index: no vacation or duplicate memory is read or
written)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from lmtpd.filtering import PersonalScripts, SieveRunner
from lmtpd.sieve import Action, FileInto, action_to_json
from lmtpd.store import maildir
from lmtpd.store.index import MailboxRow, MessageRow
from lmtpd.store.mailboxes import Store as MailStore


@dataclass
class ReplayedMessage:
    uidl: str
    message_id: str
    subject: str
    folder: str  # where it is now
    would: list[Action]
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Anything other than one store into the folder it is in now."""
        if len(self.would) != 1 or not isinstance(self.would[0], FileInto):
            return True
        return maildir.normal_folder(self.would[0].folder) != maildir.normal_folder(self.folder)

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "uidl": self.uidl, "message_id": self.message_id, "subject": self.subject,
            "now": {"folder": self.folder}, "would": [action_to_json(a) for a in self.would],
        }
        if self.errors:
            data["errors"] = self.errors
        return data


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str


def _delivery_line(name: bytes, line: bytes) -> bool:
    """Whether a line on top of a stored copy is one delivery wrote (lmtpd.delivery)."""
    if name == b"received":
        return b" (lmtpd) with lmtp id " in line.lower()
    return name in (b"return-path", b"delivered-to")


def split_trace(message: bytes, mailbox_address: str) -> tuple[Envelope, bytes]:
    """The envelope a stored copy was delivered with, from the Return-Path and Delivered-To
    lines delivery put on top of it, and the message as it came in: those two and lmtpd's
    own Received line are taken off; X-Original-To (also on top) stays a header."""
    sender, recipient = "", mailbox_address
    kept: list[bytes] = []
    seen: set[bytes] = set()
    rest = message
    while rest:
        line, newline, after = rest.partition(b"\n")
        name = line.split(b":", 1)[0].lower()
        if name == b"x-original-to":
            kept.append(line + newline)
        elif name in seen or not _delivery_line(name, line):
            break
        else:
            seen.add(name)
            value = line.split(b":", 1)[1].strip().decode("utf-8", "replace")
            if name == b"return-path":
                sender = value.strip("<>")
            elif name == b"delivered-to":
                recipient = value.strip("<>") or mailbox_address
        rest = after
    return Envelope(sender, recipient), b"".join(kept) + rest


def replay(store: MailStore, mailbox: MailboxRow, script: str, last: int = 100,
           progress: Callable[[int], None] | None = None) -> list[ReplayedMessage]:
    """Run `script` (already known to compile) over the `last` newest messages of
    `mailbox`; blocking. Each message is judged on its own."""
    runner = SieveRunner(store.config)
    rows = store.index.latest_messages(mailbox.id, last)
    personal = store.index.personal_scripts(mailbox.id).get
    results = []
    for row in rows:
        results.append(_replay_one(store, runner, mailbox, script, row, personal))
        if progress is not None:
            progress(1)
    return results


def _replay_one(store: MailStore, runner: SieveRunner, mailbox: MailboxRow, script: str,
                row: MessageRow, personal: PersonalScripts) -> ReplayedMessage:
    replayed = ReplayedMessage(row.uidl, row.message_id.strip().strip("<>"), row.subject,
                               row.folder, [])
    try:
        with maildir.open_message(store.message_path(mailbox, row)) as handle:
            stored = handle.read()
    except OSError as error:
        replayed.errors.append(f"cannot read the message: {error.strerror}")
        replayed.would = [FileInto(row.folder)]
        return replayed
    envelope, message = split_trace(stored.replace(b"\r\n", b"\n"), mailbox.address)
    result = runner.run(
        script, message, sender=envelope.sender, recipient=envelope.recipient,
        mailbox_address=mailbox.address,
        mailbox_exists=lambda folder: store.folder_exists(mailbox, folder),
        personal=personal,
    )
    replayed.would = result.actions if result is not None else [FileInto(maildir.INBOX)]
    replayed.errors = list(result.errors) if result is not None else []
    replayed.would = [dataclasses.replace(a, folder=maildir.normal_folder(a.folder))
                      if isinstance(a, FileInto) else a for a in replayed.would]
    return replayed
