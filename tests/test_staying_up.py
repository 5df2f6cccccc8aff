"""Staying up: a worker that dies is replaced and gives back what it held, lost index rows are
found again without `reindex`, memories are pruned, reloads never leave a gap, connection
caps answer clearly, and nothing is written or locked through a symbolic link."""

from __future__ import annotations

import email
import os
import poplib
import shutil
import signal
import smtplib
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lmtpd, lmtp_send, wait_for


def children_of(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def pop3_login(lmtpd: Lmtpd, user: str = "alice@example.org") -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    client.user(user)
    client.pass_("secret")
    return client


def pop3_uidls(lmtpd: Lmtpd, user: str = "alice@example.org") -> list[str]:
    client = pop3_login(lmtpd, user)
    try:
        return [line.split()[1].decode() for line in client.uidl()[1]]
    finally:
        client.quit()


def message_ids(directory: Path) -> list[str]:
    found = []
    for path in directory.iterdir():
        with path.open("rb") as handle:
            found.append(email.message_from_binary_file(handle)["Message-ID"])
    return found


class Senders:
    """Clients that keep delivering, one connection each, reconnecting after a failure; they
    remember the Message-IDs that got 250."""

    def __init__(self, lmtpd: Lmtpd, count: int, rcpt: str = "alice@example.org") -> None:
        self.lmtpd = lmtpd
        self.rcpt = rcpt
        self.acked: list[str] = []
        self.failures = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(n,)) for n in range(count)]

    def __enter__(self) -> Senders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _send(self, n: int) -> None:
        client: smtplib.LMTP | None = None
        i = 0
        while not self._stop.is_set():
            i += 1
            msgid = f"<s{n}.{i}@staying-up.example>"
            try:
                if client is None:
                    client = smtplib.LMTP(self.lmtpd.socket_path, timeout=20)
                result = lmtp_send("", "s@remote.example", [self.rcpt],
                                   f"Message-ID: {msgid}\r\nSubject: {n}.{i}\r\n\r\nx\r\n"
                                   .encode(), client=client)
                if result[self.rcpt][0] == 250:
                    self.acked.append(msgid)
            except (smtplib.SMTPException, OSError, AssertionError):
                self.failures += 1
                client = None
                time.sleep(0.05)


def test_a_killed_worker_is_replaced_and_acknowledged_mail_stays(lmtpd_factory: Any) -> None:
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    assert lmtpd.process is not None
    supervisor = lmtpd.process.pid
    workers = children_of(supervisor)
    with Senders(lmtpd, 8) as senders:
        assert wait_for(lambda: len(senders.acked) > 100, timeout=20)
        os.kill(workers[0], signal.SIGKILL)
        killed = time.monotonic()
        replacement = wait_for(
            lambda: [p for p in children_of(supervisor) if p not in workers], timeout=5)
        assert replacement, "no new worker process"
        assert time.monotonic() - killed < 2.0
        count = len(senders.acked)
        assert wait_for(lambda: len(senders.acked) > count + 100, timeout=20)
    assert "ended unexpectedly (signal 9)" in lmtpd.log()
    stored = message_ids(lmtpd.maildir("alice@example.org") / "new")
    for msgid in senders.acked:
        assert stored.count(msgid) == 1, msgid
    # POP3 lists every file, including any the dead worker wrote but never acknowledged.
    client = pop3_login(lmtpd)
    try:
        assert client.stat()[0] == len(stored)
    finally:
        client.quit()


def test_a_killed_worker_gives_back_its_pop3_connections(lmtpd_factory: Any) -> None:
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2, "pop3": {"max_connections_per_ip": 3}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    assert lmtpd.process is not None
    first, second = children_of(lmtpd.process.pid)
    # With the second worker stopped, the first one takes all three connections.
    os.kill(second, signal.SIGSTOP)
    try:
        held = [poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10) for _ in range(3)]
    finally:
        os.kill(second, signal.SIGCONT)
    with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
        poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    os.kill(first, signal.SIGKILL)
    for client in held:
        client.close()
    assert wait_for(lambda: first not in children_of(lmtpd.process.pid)
                    and len(children_of(lmtpd.process.pid)) == 2, timeout=5)
    fresh = [poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10) for _ in range(3)]
    for client in fresh:
        assert client.getwelcome().startswith(b"+OK")
        client.quit()


def copy_index(lmtpd: Lmtpd, target: Path) -> None:
    target.mkdir()
    for path in lmtpd.store_root.glob("index.sqlite3*"):
        shutil.copy2(path, target / path.name)


def restore_index(lmtpd: Lmtpd, source: Path) -> None:
    for path in lmtpd.store_root.glob("index.sqlite3*"):
        path.unlink()
    for path in source.iterdir():
        shutil.copy2(path, lmtpd.store_root / path.name)


def send(lmtpd: Lmtpd, n: int, prefix: str) -> None:
    for i in range(n):
        result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                           f"Message-ID: <{prefix}{i}@x>\r\n\r\nbody {i}\r\n".encode())
        assert result["alice@example.org"][0] == 250


def test_messages_missing_from_a_restored_index_are_found(lmtpd_factory: Any,
                                                          tmp_path: Path) -> None:
    lmtpd: Lmtpd = lmtpd_factory()
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    send(lmtpd, 3, "early")
    lmtpd.stop()
    copy_index(lmtpd, tmp_path / "backup")
    lmtpd.start()
    send(lmtpd, 5, "late")
    before = pop3_uidls(lmtpd)
    assert len(before) == 8
    lmtpd.stop()

    restore_index(lmtpd, tmp_path / "backup")
    lmtpd.start()
    assert sorted(pop3_uidls(lmtpd)) == sorted(before)  # no reindex, same UIDLs
    # A file another program drops into new/ shows up at the next login, UIDL from its name.
    name = "1700000000.M1P1Q1.elsewhere"
    (lmtpd.maildir("alice@example.org") / "new" / name).write_bytes(b"Subject: x\n\ny\n")
    assert name in pop3_uidls(lmtpd)
    usage = lmtpd.cli("mailbox", "show", "alice@example.org", "--json").stdout
    assert '"messages": 9' in usage


def test_everything_acknowledged_survives_a_kill_of_the_whole_server(
        lmtpd_factory: Any) -> None:
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    assert lmtpd.process is not None
    everyone = [lmtpd.process.pid, *children_of(lmtpd.process.pid)]
    with Senders(lmtpd, 8) as senders:
        assert wait_for(lambda: len(senders.acked) > 200, timeout=20)
        for pid in everyone:
            os.kill(pid, signal.SIGKILL)
    lmtpd.process.wait()
    lmtpd.process = None
    lmtpd.start()
    files = list((lmtpd.maildir("alice@example.org") / "new").iterdir())
    uidls = pop3_uidls(lmtpd)
    assert len(uidls) == len(files)
    stored = message_ids(lmtpd.maildir("alice@example.org") / "new")
    assert set(senders.acked) <= set(stored)


def test_a_login_whose_maildir_is_gone_fails_temporarily(lmtpd: Lmtpd) -> None:
    send(lmtpd, 1, "m")
    mailbox = lmtpd.maildir("alice@example.org")
    mailbox.rename(mailbox.with_name("alice.away"))
    client = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    client.user("alice@example.org")
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        client.pass_("secret")
    client.close()
    mailbox.with_name("alice.away").rename(mailbox)
    assert len(pop3_uidls(lmtpd)) == 1  # not [IN-USE]: the failed login released its lock


def non_message_rows(index: Path) -> int:
    with sqlite3.connect(index) as db:
        return sum(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                   for table in ("duplicates", "vacation_memory", "deliveries",
                                 "login_throttle"))


def test_memories_are_forgotten_past_their_window(lmtpd_factory: Any) -> None:
    lmtpd: Lmtpd = lmtpd_factory({"lmtp": {"duplicate_window": "2s",
                                           "trace_retention": "2s"}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    earlier = non_message_rows(lmtpd.index_path)
    send(lmtpd, 50, "window")
    assert wait_for(lambda: non_message_rows(lmtpd.index_path) >= earlier + 100, timeout=5)
    assert wait_for(lambda: non_message_rows(lmtpd.index_path) == earlier, timeout=10)
    # Past the window the same Message-ID is a new message again.
    send(lmtpd, 1, "window")
    assert len(list((lmtpd.maildir("alice@example.org") / "new").iterdir())) == 51


def test_reloads_never_skip_the_global_script(lmtpd_factory: Any, tmp_path: Path) -> None:
    before = tmp_path / "before.sieve"
    before.write_text('require "fileinto";\nfileinto "Junk";\n')
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2, "lmtp": {"duplicate_window": "0"},
                                  "sieve": {"before": str(before)}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    assert lmtpd.process is not None
    stop = threading.Event()

    def hup() -> None:
        while not stop.is_set():
            os.kill(lmtpd.process.pid, signal.SIGHUP)  # type: ignore[union-attr]
            time.sleep(0.5)

    def deliver(n: int) -> None:
        client = smtplib.LMTP(lmtpd.socket_path, timeout=30)
        for i in range(500):
            result = lmtp_send("", "s@remote.example", ["alice@example.org"],
                               f"Subject: {n}.{i}\r\n\r\nx\r\n".encode(), client=client)
            assert result["alice@example.org"][0] == 250
        client.quit()

    reloader = threading.Thread(target=hup)
    reloader.start()
    senders = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
    try:
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
    finally:
        stop.set()
        reloader.join()
    mailbox = lmtpd.maildir("alice@example.org")
    assert len(list((mailbox / ".Junk" / "new").iterdir())) == 4000
    assert list((mailbox / "new").iterdir()) == []
    assert lmtpd.log().count("configuration reloaded") >= 5


@pytest.mark.parametrize("content", ["", "[lmtp\nbroken = ", "[domains]\nlocal = 5\n"])
def test_a_reload_to_an_empty_or_broken_file_keeps_the_running_one(
        lmtpd: Lmtpd, content: str) -> None:
    assert lmtpd.process is not None
    good = lmtpd.config_path.read_text()
    lmtpd.config_path.write_text(content)
    os.kill(lmtpd.process.pid, signal.SIGHUP)
    assert wait_for(lambda: "reload failed, keeping the running configuration" in lmtpd.log())
    line = next(x for x in lmtpd.log_lines if "reload failed" in x)
    assert str(lmtpd.config_path) in line
    if not content:
        assert "empty" in line
    result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                       b"Subject: still\r\n\r\nhere\r\n")
    assert result["alice@example.org"][0] == 250
    lmtpd.config_path.write_text(good)


def test_a_reload_warns_when_a_domain_with_mailboxes_stops_being_local(lmtpd: Lmtpd) -> None:
    assert lmtpd.process is not None
    text = lmtpd.config_path.read_text().replace('"example.org", ', "")
    lmtpd.config_path.write_text(text)
    os.kill(lmtpd.process.pid, signal.SIGHUP)
    assert wait_for(lambda: "no longer in domains.local: example.org" in lmtpd.log())


def test_the_lmtp_connection_cap_answers_421(lmtpd_factory: Any) -> None:
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2, "lmtp": {"max_connections": 3}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    held = [smtplib.LMTP(lmtpd.socket_path, timeout=10) for _ in range(3)]
    with socket.socket(socket.AF_UNIX) as extra:
        extra.settimeout(10)
        extra.connect(lmtpd.socket_path)
        assert extra.recv(512).startswith(b"421 4.3.2 ")
        assert extra.recv(512) == b""  # and it hangs up
    client = pop3_login(lmtpd)  # POP3 is not affected
    client.quit()
    held.pop().quit()
    time.sleep(0.2)
    result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                       b"Subject: in\r\n\r\nagain\r\n")
    assert result["alice@example.org"][0] == 250
    for session in held:
        session.quit()


def test_nothing_is_written_through_a_symlinked_new(lmtpd: Lmtpd, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    new = lmtpd.maildir("alice@example.org") / "new"
    new.rmdir()
    new.symlink_to(elsewhere)
    result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                       b"Subject: link\r\n\r\nx\r\n")
    assert result["alice@example.org"][0] == 451
    assert result["alice@example.org"][1].startswith("4.3.0")
    assert list(elsewhere.iterdir()) == []


def test_a_mailbox_path_planted_as_a_symlink_is_refused(lmtpd: Lmtpd, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(lmtpd.maildir("bob@example.org"))
    lmtpd.maildir("bob@example.org").symlink_to(elsewhere)
    result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["bob@example.org"],
                       b"Subject: link\r\n\r\nx\r\n")
    assert result["bob@example.org"][0] == 451
    assert list(elsewhere.iterdir()) == []


def test_the_pop3_lock_is_never_taken_through_a_symlink(lmtpd: Lmtpd, tmp_path: Path) -> None:
    target = tmp_path / "created-through-the-link"
    (lmtpd.maildir("alice@example.org") / "lmtpd-pop3.lock").symlink_to(target)
    client = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    client.user("alice@example.org")
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        client.pass_("secret")
    client.close()
    assert not target.exists()


def test_an_account_change_servers_would_miss_is_refused(lmtpd: Lmtpd) -> None:
    counter = Path(f"{lmtpd.index_path}-accounts")
    counter.unlink(missing_ok=True)
    counter.mkdir()  # cannot be opened for writing
    try:
        result = lmtpd.cli("mailbox", "add", "carol@example.org", "--password-stdin",
                           input="pw\n", check=False)
        assert result.returncode == 1
        assert str(counter) in result.stderr
        assert "carol" not in lmtpd.cli("mailbox", "list").stdout
    finally:
        counter.rmdir()


def test_a_replaced_index_is_noticed(lmtpd: Lmtpd, tmp_path: Path) -> None:
    first = lmtp_send(lmtpd.socket_path, "s@remote.example", ["bob@example.org"],
                      b"Subject: a\r\n\r\nx\r\n")
    assert first["bob@example.org"][0] == 250  # answered, and cached
    older = tmp_path / "older.sqlite3"
    db, copy = sqlite3.connect(lmtpd.index_path), sqlite3.connect(older)
    db.backup(copy)
    db.close()
    copy.execute("PRAGMA journal_mode=DELETE")  # the whole copy in one file
    copy.execute("DELETE FROM mailboxes WHERE address = 'bob@example.org'")
    copy.commit()
    copy.close()
    os.replace(older, lmtpd.index_path)

    def bob_refused() -> bool:
        result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["bob@example.org"],
                           b"Subject: b\r\n\r\nx\r\n")
        return result["bob@example.org"][0] == 550

    assert wait_for(bob_refused, timeout=5)
    assert wait_for(lambda: "was replaced; opening the new index" in lmtpd.log())


def test_a_group_writable_store_is_warned_about(lmtpd_factory: Any) -> None:
    lmtpd: Lmtpd = lmtpd_factory()
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.store_root.chmod(0o775)
    result = lmtpd.cli("check-config")
    assert "writable by its group or by everyone" in result.stderr
    lmtpd.start()
    assert "writable by its group or by everyone" in lmtpd.log()


def test_the_open_files_limit_is_raised_to_the_hard_limit(lmtpd_factory: Any) -> None:
    import resource

    lmtpd: Lmtpd = lmtpd_factory({"processes": 1})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by lmtpd
    try:
        lmtpd.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert lmtpd.process is not None
    [worker] = children_of(lmtpd.process.pid)
    line = next(x for x in Path(f"/proc/{worker}/limits").read_text().splitlines()
                if x.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)]


def test_stale_tmp_files_are_cleared_at_start(lmtpd_factory: Any) -> None:
    lmtpd: Lmtpd = lmtpd_factory()
    lmtpd.add_mailbox("alice@example.org")
    tmp = lmtpd.maildir("alice@example.org") / "tmp"
    stale, fresh = tmp / "1.M1P1Q1.dead", tmp / "2.M2P2Q2.writing"
    for path in (stale, fresh):
        path.write_bytes(b"partial")
    old = time.time() - 37 * 3600
    os.utime(stale, (old, old))
    lmtpd.start()
    assert wait_for(lambda: not stale.exists())
    assert fresh.exists()
