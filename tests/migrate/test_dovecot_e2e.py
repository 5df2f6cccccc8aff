"""Acceptance 5: users of a real Dovecot (passwd-file with several password schemes, Maildir,
default pop3_uidl_format) are imported; afterwards each logs into lmtpd's POP3 with the old
password and sees exactly the UIDLs (and sizes, and message bytes) Dovecot served, also after
`lmtpd reindex`; `lmtpd verify` finds nothing to repair."""

from __future__ import annotations

import os
import poplib
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import Lmtpd, lmtp_send, require_tool
from tests.migrate.conftest import (
    Dovecot,
    DovecotUser,
    pop3_listing,
    write_maildir_message,
)

USERS = [
    DovecotUser("alice@example.org", "SHA512-CRYPT", "alice-pw"),
    DovecotUser("bob@example.org", "BLF-CRYPT", "bob pässword"),
    DovecotUser("carol@example.net", "SSHA512", "carol-pw"),
    DovecotUser("dave@example.net", "ARGON2ID", "dave-pw"),
    DovecotUser("erin@example.org", "PLAIN", "erin-pw"),
]


def message(user: DovecotUser, n: int) -> bytes:
    return (f"From: sender{n}@example.com\nTo: {user.address}\nSubject: message {n}\n"
            f"Message-ID: <{n}.{user.local}@example.com>\n\nbody {n} of {user.local}\n"
            + "line\n" * n).encode()


def populate(dovecot: Dovecot) -> None:
    """Mail as Dovecot users really have it: delivered by its LMTP, one message dropped into
    new/ by another MDA (no S=/W= in its name), and a folder made by a +detail delivery."""
    legacy = dovecot.maildir("erin@example.org")
    write_maildir_message(legacy, "1600000000.legacy-mda.host", b"Subject: old\n\nold mail\n")
    for directory, _dirs, names in os.walk(legacy.parent):
        for name in [directory, *(os.path.join(directory, n) for n in names)]:
            os.chown(name, dovecot.uid, dovecot.gid)
    os.chown(legacy.parent.parent, dovecot.uid, dovecot.gid)
    dovecot.start()
    for user in USERS:
        for n in range(1, 4):
            replies = lmtp_send(str(dovecot.socket_path), "sender@example.com",
                                [user.address], message(user, n))
            assert replies[user.address][0] == 250, (replies, dovecot.log())
    archived = lmtp_send(str(dovecot.socket_path), "sender@example.com",
                         ["alice+Archive@example.org"], message(USERS[0], 9))
    assert archived["alice+Archive@example.org"][0] == 250, dovecot.log()


def dovecot_view(dovecot: Dovecot) -> dict[str, dict[str, Any]]:
    """What each user's POP3 client saw from Dovecot. Bob deletes one message and carol reads
    everything first (so Dovecot renames files into cur/ with :2,S), as real clients do."""
    with_dele = dovecot.pop3(USERS[1])
    with_dele.dele(2)
    with_dele.quit()
    reader = dovecot.pop3(USERS[2])
    for n in range(1, len(reader.list()[1]) + 1):
        reader.retr(n)
    reader.quit()
    seen: dict[str, dict[str, Any]] = {}
    for user in USERS:
        client = dovecot.pop3(user)
        uidl, listing = pop3_listing(client)
        seen[user.address] = {"uidl": uidl, "list": listing,
                              "first": b"\r\n".join(client.retr(1)[1])}
        client.quit()
    return seen


def lmtpd_view(lmtpd: Lmtpd, user: DovecotUser) -> dict[str, Any]:
    client = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=20)
    try:
        client.user(user.address)
        client.pass_(user.password)
        uidl, listing = pop3_listing(client)
        first = b"\r\n".join(client.retr(1)[1])
        client.quit()
    finally:
        client.close()
    return {"uidl": uidl, "list": listing, "first": first}


def stored_hashes(lmtpd: Lmtpd) -> dict[str, str]:
    with sqlite3.connect(lmtpd.index_path) as db:
        return dict(db.execute("SELECT address, password_hash FROM mailboxes"))


def test_dovecot_users_keep_passwords_and_uidls(dovecot_dir: Path, lmtpd_factory: Any) -> None:
    require_tool("dovecot")
    dovecot = Dovecot(dovecot_dir, USERS)
    dovecot.write()
    try:
        populate(dovecot)
        before = dovecot_view(dovecot)
    finally:
        dovecot.stop()
    # Dovecot wrote a uidlist with the default header and served UIDLs in its default format
    # (whose `X` gives lower-case hex digits).
    header = (dovecot.maildir("alice@example.org") / "dovecot-uidlist").read_text().split()
    assert header[0] == "3" and header[1].startswith("V")
    uidvalidity = int(header[1][1:])
    assert before["alice@example.org"]["uidl"][0] == f"1 {1:08x}{uidvalidity:08x}"
    assert len(before["bob@example.org"]["uidl"]) == 2
    assert len(before["erin@example.org"]["uidl"]) == 4

    lmtpd = lmtpd_factory()
    args = ["import", "dovecot", "--passwd-file", str(dovecot.passwd),
            "--maildir-root", str(dovecot.mail_root)]
    dry = lmtpd.cli(*args, "--dry-run")
    assert "would create alice@example.org (SHA512-CRYPT)" in dry.stdout
    assert not lmtpd.index_path.exists()  # a dry run leaves nothing behind
    first = lmtpd.cli(*args)
    assert "imported 5 mailboxes" in first.stdout, first.stdout
    assert "importing" in first.stderr  # the progress bar
    for user in USERS:
        assert user.password not in first.stdout + first.stderr + dry.stdout + dry.stderr

    again = lmtpd.cli(*args)  # idempotent: nothing twice
    assert "imported 0 mailboxes" in again.stdout and "skipped 5 mailboxes" in again.stdout
    schemes = {a: h[1:].split("}")[0] for a, h in stored_hashes(lmtpd).items()}
    assert schemes == {u.address: u.scheme for u in USERS}

    lmtpd.start()
    for user in USERS:
        assert lmtpd_view(lmtpd, user) == before[user.address], user
    # The first successful login replaced each legacy hash with argon2id.
    assert all(h.startswith("$argon2id$") for h in stored_hashes(lmtpd).values())

    lmtpd.cli("reindex")
    for user in USERS:
        assert lmtpd_view(lmtpd, user)["uidl"] == before[user.address]["uidl"], user
    lmtpd.cli("verify")
    info = lmtpd.cli("mailbox", "show", "alice@example.org", "--json")
    assert '"Archive"' in info.stdout
    archive = lmtpd.maildir("alice@example.org") / ".Archive"
    assert all(",U=" in p.name for p in archive.glob("*/*"))
    # The source is left as it was (copy is the default).
    assert len(list(dovecot.maildir("alice@example.org").glob("*/*,S=*"))) == 3
    lmtpd.stop()
