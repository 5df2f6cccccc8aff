"""Acceptance 2-4: UIDL stability, DELE semantics (QUIT, dropped connection, server stop,
failed deletes), the per-mailbox lock, and the snapshot taken at login."""

from __future__ import annotations

import poplib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lmtpd, lmtp_send, wait_for
from tests.pop3.conftest import add_mailboxes, login, message_files, retr_bytes

ALICE = "alice@example.org"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lmtpd]:
    """One server for the tests that need neither a restart nor special settings; each of
    them uses mailboxes of its own."""
    instance = Lmtpd(tmp_path_factory.mktemp("pop3-store"), {"pop3": {"login_failure_delay": 0.1}})
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def mailbox(shared: Lmtpd, request: pytest.FixtureRequest) -> str:
    address = f"{request.node.name.split('[')[0].removeprefix('test_')[:40]}@example.org"
    add_mailboxes(shared, address, "other-" + address)
    return address


def deliver(instance: Lmtpd, count: int, address: str = ALICE) -> None:
    for n in range(count):
        message = f"Subject: message {n}\r\nMessage-ID: <{n}.{time.time()}@t>\r\n\r\nbody {n}\r\n"
        result = lmtp_send(instance.socket_path, "s@example.net", [address], message.encode())
        assert result[address][0] == 250


def listing(instance: Lmtpd, address: str = ALICE) -> tuple[list[bytes], list[bytes]]:
    client = login(instance, address)
    _, uidl, _ = client.uidl()
    _, sizes, _ = client.list()
    client.quit()
    return uidl, sizes


def index_rows(instance: Lmtpd, address: str = ALICE) -> int:
    with sqlite3.connect(instance.index_path) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM messages JOIN mailboxes ON mailboxes.id = mailbox_id"
            " WHERE address = ?", (address,)).fetchone()
    return int(count)


def test_uidl_stable_across_sessions_restart_and_reindex(lmtpd: Lmtpd) -> None:
    deliver(lmtpd, 4)
    first = listing(lmtpd)
    assert len(first[0]) == 4
    # RETR moves a message to cur/ with the S flag: its UIDL must not change.
    client = login(lmtpd)
    client.retr(2)
    client.quit()
    assert listing(lmtpd) == first
    lmtpd.stop()
    lmtpd.start()
    assert listing(lmtpd) == first
    lmtpd.cli("reindex")
    assert listing(lmtpd) == first
    # Lose every message row, then rebuild them from the Maildir alone.
    with sqlite3.connect(lmtpd.index_path) as db:
        db.execute("DELETE FROM messages")
    assert index_rows(lmtpd) == 0
    lmtpd.cli("reindex")
    assert listing(lmtpd) == first
    assert lmtpd.cli("verify").returncode == 0


def test_dele_then_dropped_connection_deletes_nothing(shared: Lmtpd, mailbox: str) -> None:
    deliver(shared, 3, mailbox)
    before = message_files(shared, mailbox)
    client = login(shared, mailbox)
    client.dele(1)
    client.dele(3)
    client.sock.shutdown(socket.SHUT_RDWR)  # no QUIT
    client.close()
    time.sleep(0.3)
    assert message_files(shared, mailbox) == before
    assert index_rows(shared, mailbox) == 3
    client = login(shared, mailbox)  # the lock was released too
    assert client.stat()[0] == 3
    client.quit()


def test_dele_then_quit_deletes_exactly_those(shared: Lmtpd, mailbox: str) -> None:
    other = "other-" + mailbox
    deliver(shared, 4, mailbox)
    deliver(shared, 1, other)
    uidls, _ = listing(shared, mailbox)
    client = login(shared, mailbox)
    kept = {retr_bytes(client, 2)[0], retr_bytes(client, 4)[0]}
    client.dele(1)
    client.dele(3)
    assert client.quit() == b"+OK Logging out, 2 messages deleted."
    assert index_rows(shared, mailbox) == 2
    assert len(message_files(shared, mailbox)) == 2
    assert len(message_files(shared, other)) == 1
    remaining, _ = listing(shared, mailbox)
    assert [u.split()[1] for u in remaining] == [uidls[1].split()[1], uidls[3].split()[1]]
    client = login(shared, mailbox)
    assert {retr_bytes(client, 1)[0], retr_bytes(client, 2)[0]} == kept
    client.quit()
    assert shared.cli("verify").returncode == 0


def test_server_stop_deletes_nothing(lmtpd: Lmtpd) -> None:
    deliver(lmtpd, 2)
    before = message_files(lmtpd, ALICE)
    client = login(lmtpd)
    client.dele(1)
    assert lmtpd.stop() == 0
    with pytest.raises((poplib.error_proto, OSError, EOFError)) as caught:
        client.quit()
    if isinstance(caught.value, poplib.error_proto):
        assert b"-ERR" in caught.value.args[0]
    assert message_files(lmtpd, ALICE) == before
    lmtpd.start()
    client = login(lmtpd)
    assert client.stat()[0] == 2
    client.quit()


def test_second_login_gets_in_use_until_the_first_quits(shared: Lmtpd, mailbox: str) -> None:
    deliver(shared, 1, mailbox)
    first = login(shared, mailbox)
    second = poplib.POP3("127.0.0.1", shared.pop3_port, timeout=10)
    second.user(mailbox)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_("secret")
    # A wrong password is told as a wrong password, not as "in use".
    second.user(mailbox)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        second.pass_("wrong")
    # Another mailbox is not affected.
    login(shared, "other-" + mailbox).quit()
    first.quit()
    second.user(mailbox)
    assert second.pass_("secret").startswith(b"+OK")
    assert second.stat()[0] == 1
    second.quit()


def test_concurrent_logins_only_one_wins(shared: Lmtpd, mailbox: str) -> None:
    results: list[str] = []

    def attempt() -> None:
        client = poplib.POP3("127.0.0.1", shared.pop3_port, timeout=30)
        try:
            client.user(mailbox)
            client.pass_("secret")
            results.append("ok")
            # The winner holds the mailbox until every other attempt has been answered.
            wait_for(lambda: len(results) == 4, timeout=30)
        except poplib.error_proto as error:
            results.append(error.args[0].decode())
        finally:
            client.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 1
    assert all("[IN-USE]" in r for r in results if r != "ok")


def test_messages_delivered_during_a_session_wait_for_the_next(shared: Lmtpd,
                                                               mailbox: str) -> None:
    deliver(shared, 1, mailbox)
    client = login(shared, mailbox)
    deliver(shared, 1, mailbox)
    assert client.stat()[0] == 1
    client.dele(1)
    client.quit()
    client = login(shared, mailbox)
    assert client.stat()[0] == 1
    client.quit()


def test_failed_delete_answers_sys_temp(lmtpd_factory: Any, tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    instance = lmtpd_factory()
    add_mailboxes(instance, ALICE)
    instance.start(env={"LMTPD_FAULTS_FILE": str(faults)})
    deliver(instance, 2)
    client = login(instance)
    client.dele(1)
    faults.write_text("fsync EIO\n")
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        client.quit()
    faults.unlink()
    # What was not confirmed is repaired by a reindex; the other message was not touched.
    instance.cli("reindex")
    assert instance.cli("verify").returncode == 0
    client = login(instance)
    assert client.stat()[0] in (1, 2)
    client.quit()
