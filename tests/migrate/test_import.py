"""`lmtpd import dovecot` on hand-made Dovecot data: layouts, bare users, refused schemes,
P<uidl> fields, folders, --dry-run, --adopt, --update, and resuming an interrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmtpd import config as config_module
from lmtpd.store import maintenance
from lmtpd.store.mailboxes import Store
from tests.conftest import Lmtpd
from tests.migrate.conftest import dovecot_hash, write_maildir_message

UIDVALIDITY = 1700000000


def dovecot_maildir(folder: Path, messages: dict[int, str], extra: dict[int, str] | None = None,
                    unlisted: tuple[str, ...] = ()) -> None:
    """A Maildir as Dovecot leaves it: files plus a v3 dovecot-uidlist naming them by UID."""
    lines = [f"3 V{UIDVALIDITY} N{max(messages, default=0) + 1} G00112233"]
    for uid, name in messages.items():
        subdir = "cur" if ":2," in name else "new"
        write_maildir_message(folder, name, f"Subject: {uid}\n\nbody {uid}\n".encode(), subdir)
        fields = (extra or {}).get(uid, "")
        lines.append(f"{uid} {fields + ' ' if fields else ''}:{name}")
    for name in unlisted:
        write_maildir_message(folder, name, b"Subject: unlisted\n\nnew\n")
    (folder / "dovecot-uidlist").write_text("\n".join(lines) + "\n")
    (folder / "dovecot.index.log").write_bytes(b"\0index")  # never imported


def name(n: int) -> str:
    return f"{UIDVALIDITY + n}.M{n}P100.oldhost,S={13 + len(str(n)) * 2},W={16 + len(str(n)) * 2}"


def uidls(instance: Lmtpd, address: str, folder: str = "INBOX") -> list[str]:
    store = Store(config_module.load(instance.config_path))
    try:
        mailbox = store.mailbox(address)
        rows = store.index.messages(mailbox.id, folder)
        return [r.uidl for r in rows]
    finally:
        store.close()


def stored_hash(instance: Lmtpd, address: str) -> str:
    store = Store(config_module.load(instance.config_path))
    try:
        return store.mailbox(address).password_hash
    finally:
        store.close()


def hex_uidl(uid: int) -> str:
    return f"{uid:08x}{UIDVALIDITY:08x}"


def test_layouts_bare_users_folders_and_refusals(tmp_path: Path, lmtpd_factory: Any) -> None:
    root = tmp_path / "vmail"
    dovecot_maildir(root / "example.org" / "alice", {1: name(1), 2: name(2) + ":2,S"},
                    extra={2: "Pold-server-uidl W20"}, unlisted=("1800000000.M1P1.late",))
    dovecot_maildir(root / "example.org" / "alice" / ".Lists.python", {7: name(7)})
    dovecot_maildir(root / "example.org" / "bob" / "Maildir", {3: name(3)})
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "# Dovecot users\n\n"
        f"alice@example.org:{dovecot_hash('SHA512-CRYPT', 'a-pw')}:5000:5000::/home/a::\n"
        f"bob:{dovecot_hash('BLF-CRYPT', 'b-pw')}:5000:5000::/home/b::"
        "userdb_quota_rule=*:storage=1G\n"
        f"carol@example.org:{dovecot_hash('MD5-CRYPT', 'c-pw')}:5000:5000::/home/c::\n"
        f"dave@elsewhere.test:{{PLAIN}}d-pw:5000:5000::/home/d::\n"
        f"erin@example.org:{{PLAIN}}e-pw:5000:5000::/home/e::\n"
    )
    lmtpd = lmtpd_factory()
    args = ["import", "dovecot", "--passwd-file", str(passwd), "--maildir-root", str(root),
            "--domain", "example.org"]

    dry = lmtpd.cli(*args, "--dry-run", check=False)
    assert dry.returncode == 1
    assert "would create alice@example.org (SHA512-CRYPT)" in dry.stdout
    alice_line = next(line for line in dry.stdout.splitlines() if "create alice" in line)
    assert alice_line.endswith(": 4 messages, 80 bytes, 2 folders"), alice_line
    assert "would create bob@example.org (BLF-CRYPT)" in dry.stdout
    assert "MD5-CRYPT is not supported" in dry.stderr
    assert "elsewhere.test is not in domains.local" in dry.stderr
    assert "a-pw" not in dry.stdout + dry.stderr
    assert not lmtpd.store_root.exists()

    result = lmtpd.cli(*args, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "imported 3 mailboxes" in result.stdout, result.stdout
    assert "2 users not imported" in result.stderr
    assert "erin@example.org: no Maildir found" in result.stdout

    inbox = uidls(lmtpd, "alice@example.org")
    # Dovecot's order and UIDLs; the P field wins; the unlisted message keeps its file name's.
    assert inbox == [hex_uidl(1), "old-server-uidl", "1800000000.M1P1.late"]
    assert uidls(lmtpd, "alice@example.org", "Lists/python") == [hex_uidl(7)]
    assert uidls(lmtpd, "bob@example.org") == [hex_uidl(3)]
    assert stored_hash(lmtpd, "bob@example.org").startswith("{BLF-CRYPT}$2y$")
    store = Store(config_module.load(lmtpd.config_path))
    try:
        assert store.mailbox("bob@example.org").quota == 1024 ** 3
        assert maintenance.verify(store) == []
    finally:
        store.close()
    alice = lmtpd.maildir("alice@example.org")
    assert not list(alice.glob("dovecot*")) and (alice / ".Lists.python" / "maildirfolder").exists()
    assert (root / "example.org" / "alice" / "new" / name(1)).exists()  # copied, not moved


def test_adopt_moves_files(tmp_path: Path, lmtpd_factory: Any) -> None:
    root = tmp_path / "vmail"
    source = root / "example.org" / "alice" / "Maildir"
    dovecot_maildir(source, {1: name(1), 2: name(2)})
    passwd = tmp_path / "passwd"
    passwd.write_text("alice@example.org:{PLAIN}pw::::::\n")
    lmtpd = lmtpd_factory()
    lmtpd.cli("import", "dovecot", "--passwd-file", str(passwd), "--maildir-root", str(root),
              "--adopt")
    assert uidls(lmtpd, "alice@example.org") == [hex_uidl(1), hex_uidl(2)]
    assert not list((source / "new").iterdir())
    lmtpd.cli("verify")


def test_custom_layout_from_home(tmp_path: Path, lmtpd_factory: Any) -> None:
    home = tmp_path / "homes" / "alice"
    dovecot_maildir(home / "mail", {5: name(5)})
    passwd = tmp_path / "passwd"
    passwd.write_text(f"alice@example.org:{{PLAIN}}pw:1:1::{home}::\n")
    lmtpd = lmtpd_factory()
    lmtpd.cli("import", "dovecot", "--passwd-file", str(passwd), "--layout", "~/mail")
    assert uidls(lmtpd, "alice@example.org") == [hex_uidl(5)]


def test_rerun_update_and_resume(tmp_path: Path, lmtpd_factory: Any) -> None:
    root = tmp_path / "vmail"
    source = root / "example.org" / "alice"
    dovecot_maildir(source, {1: name(1), 2: name(2)})
    passwd = tmp_path / "passwd"
    passwd.write_text("alice@example.org:{PLAIN}pw::::::\n")
    lmtpd = lmtpd_factory()
    args = ["import", "dovecot", "--passwd-file", str(passwd), "--maildir-root", str(root)]

    # An interrupted run: one file already placed, no mailbox row yet. Running again resumes.
    target = lmtpd.maildir("alice@example.org")
    write_maildir_message(target, name(1) + f",U={hex_uidl(1)}", b"Subject: 1\n\nbody 1\n")
    lmtpd.cli(*args)
    assert uidls(lmtpd, "alice@example.org") == [hex_uidl(1), hex_uidl(2)]

    again = lmtpd.cli(*args)
    assert "skip alice@example.org: mailbox exists already" in again.stdout
    assert uidls(lmtpd, "alice@example.org") == [hex_uidl(1), hex_uidl(2)]

    # Dovecot got one more message and a new password before the final switch-over.
    dovecot_maildir(source, {1: name(1), 2: name(2), 3: name(3)})
    passwd.write_text("alice@example.org:{PLAIN}new-pw::::::\n")
    update = lmtpd.cli(*args, "--update")
    assert "1 messages, " in update.stdout, update.stdout
    assert "2 messages already there" in update.stdout
    assert uidls(lmtpd, "alice@example.org") == [hex_uidl(n) for n in (1, 2, 3)]
    assert stored_hash(lmtpd, "alice@example.org") == "{PLAIN}new-pw"

    # Once the user has a password of lmtpd's own, --update leaves it alone.
    lmtpd.cli("mailbox", "passwd", "alice@example.org", "--password-stdin", input="mine\n")
    lmtpd.cli(*args, "--update")
    assert stored_hash(lmtpd, "alice@example.org").startswith("$argon2id$")
    lmtpd.cli("verify")


def test_update_brings_mail_for_a_refused_scheme(tmp_path: Path, lmtpd_factory: Any) -> None:
    root = tmp_path / "vmail"
    dovecot_maildir(root / "example.org" / "carol", {4: name(4)})
    passwd = tmp_path / "passwd"
    passwd.write_text(f"carol@example.org:{dovecot_hash('MD5-CRYPT', 'c-pw')}::::::\n")
    lmtpd = lmtpd_factory()
    args = ["import", "dovecot", "--passwd-file", str(passwd), "--maildir-root", str(root)]
    assert lmtpd.cli(*args, check=False).returncode == 1
    lmtpd.add_mailbox("carol@example.org", "fresh")
    update = lmtpd.cli(*args, "--update")
    assert "update carol@example.org (password kept)" in update.stdout
    assert "password not taken over" in update.stdout
    assert uidls(lmtpd, "carol@example.org") == [hex_uidl(4)]
    assert stored_hash(lmtpd, "carol@example.org").startswith("$argon2id$")
