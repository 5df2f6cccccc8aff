"""`processes = 2`: two worker processes accept on the same LMTP socket under a supervisor;
every message is stored once, SIGHUP reaches every process, SIGTERM stops them all, metrics
add up, and a worker that dies is replaced."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import threading
import time
import urllib.request
from pathlib import Path

from tests.conftest import Lmtpd, free_port, lmtp_send, wait_for


def children_of(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_two_processes_share_the_socket(lmtpd_factory) -> None:
    port = free_port()
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2,
                                  "metrics": {"listen": f"127.0.0.1:{port}"}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    assert lmtpd.process is not None
    main_pid = lmtpd.process.pid
    workers = children_of(main_pid)
    assert len(workers) == 2
    assert "processes=2" in lmtpd.log()

    errors: list[str] = []

    def send(n: int) -> None:
        client = smtplib.LMTP(lmtpd.socket_path)
        try:
            for i in range(25):
                result = lmtp_send("", "s@remote.example", ["alice@example.org"],
                                   f"Message-ID: <p{n}.{i}@x>\r\n\r\nbody\r\n".encode(),
                                   client=client)
                if result["alice@example.org"][0] != 250:
                    errors.append(repr(result))
        finally:
            client.quit()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    files = list((lmtpd.maildir("alice@example.org") / "new").iterdir())
    assert len(files) == 200
    served_by = {f.name.split("P", 1)[1].split("Q", 1)[0] for f in files}
    assert served_by == {str(pid) for pid in workers}  # both processes delivered
    assert lmtpd.cli("verify").returncode == 0

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    line = next(x for x in text.splitlines()
                if x.startswith('lmtpd_deliveries_total{outcome="delivered",status="2.0.0"}'))
    assert float(line.split()[-1]) == 200

    # SIGHUP reaches the worker too: a newly local domain is accepted by every process.
    text = lmtpd.config_path.read_text().replace('"localhost"]', '"localhost", "example.com"]')
    lmtpd.config_path.write_text(text)
    lmtpd.add_mailbox("new@example.com")
    os.kill(main_pid, signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in lmtpd.log())
    time.sleep(0.5)
    codes = [lmtp_send(lmtpd.socket_path, "s@remote.example", ["new@example.com"],
                       b"Subject: r\r\n\r\nx\r\n")["new@example.com"][0] for _ in range(20)]
    assert set(codes) == {250}

    assert lmtpd.stop() == 0
    for worker in workers:
        assert not os.path.exists(f"/proc/{worker}") or "Z" in Path(
            f"/proc/{worker}/stat").read_text().split()[2]
    assert not os.path.exists(lmtpd.socket_path)


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def test_a_burst_of_sessions_is_split_evenly(lmtpd_factory) -> None:
    """An MTA opens its sessions at once and keeps them; each process must get its share,
    or one interpreter does all the work while the other idles."""
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    assert lmtpd.process is not None
    pids = children_of(lmtpd.process.pid)
    before = [open_sockets(pid) for pid in pids]
    for _ in range(3):  # repeated, since a lucky wake-up order could split evenly by chance
        # An MTA starts its sessions while one process is busy for a moment (here: stopped
        # for 10 ms): the idle one must not take them all.
        clients = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(4)]
        try:
            os.kill(pids[1], signal.SIGSTOP)
            try:
                for client in clients:
                    client.connect(str(lmtpd.socket_path))
                time.sleep(0.01)
            finally:
                os.kill(pids[1], signal.SIGCONT)
            for client in clients:
                client.settimeout(10)
                assert client.recv(512).startswith(b"220")  # accepted and greeted
            sessions = [open_sockets(pid) - base for pid, base in zip(pids, before,
                                                                       strict=True)]
            assert sessions == [2, 2]
        finally:
            for client in clients:
                client.close()
        assert wait_for(lambda: [open_sockets(pid) for pid in pids] == before, timeout=10)
    # Sessions opened one after another while others stay open also alternate.
    clients = []
    try:
        for expected in ([1, 0], [1, 1], [2, 1], [2, 2]):
            clients.append(smtplib.LMTP(lmtpd.socket_path))
            assert clients[-1].ehlo("one")[0] == 250
            sessions = sorted((open_sockets(pid) - base for pid, base in zip(
                pids, before, strict=True)), reverse=True)
            assert sessions == sorted(expected, reverse=True)
    finally:
        for client in clients:
            client.quit()


def test_account_changes_apply_at_the_next_rcpt_in_every_process(lmtpd_factory,
                                                                  tmp_path: Path) -> None:
    """What RCPT looks up is cached in each server process; a change made with the CLI in
    another process must still be in force for the very next RCPT, whichever process and
    session it reaches."""
    lmtpd: Lmtpd = lmtpd_factory({"processes": 2})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.add_mailbox("bob@example.org")
    lmtpd.start()
    sessions = [smtplib.LMTP(lmtpd.socket_path) for _ in range(4)]

    def rcpt_everywhere(address: str) -> set[int]:
        """RCPT on every open session (they are spread over both processes), several times
        so both processes have the answer cached."""
        codes = set()
        for _ in range(3):
            for session in sessions:
                session.ehlo_or_helo_if_needed()
                assert session.mail("s@remote.example")[0] == 250
                codes.add(session.rcpt(address)[0])
                session.rset()
        return codes

    try:
        assert rcpt_everywhere("alice@example.org") == {250}
        assert rcpt_everywhere("team@example.org") == {550}
        lmtpd.cli("mailbox", "disable", "alice@example.org")
        assert rcpt_everywhere("alice@example.org") == {550}
        lmtpd.cli("mailbox", "enable", "alice@example.org")
        assert rcpt_everywhere("alice@example.org") == {250}
        lmtpd.cli("alias", "add", "team@example.org", "bob@example.org")
        assert rcpt_everywhere("team@example.org") == {250}
        lmtpd.cli("mailbox", "delete", "bob@example.org")
        assert rcpt_everywhere("team@example.org") == {550}
        assert rcpt_everywhere("bob@example.org") == {550}
        # A Sieve script set now runs for the next message.
        script = tmp_path / "reject.sieve"
        script.write_text('require "reject";\nreject "not today";\n')
        lmtpd.cli("sieve", "set", "alice@example.org", str(script))
        result = lmtp_send("", "s@remote.example", ["alice@example.org"],
                           b"Subject: x\r\n\r\nbody\r\n", client=sessions[0])
        assert result["alice@example.org"][0] == 550
        # A quota set now holds at the next RCPT (a full mailbox is refused there).
        lmtpd.cli("sieve", "delete", "alice@example.org")
        for session in sessions:
            result = lmtp_send("", "s@remote.example", ["alice@example.org"],
                               b"Subject: fill\r\n\r\n" + (b"x" * 78 + b"\r\n") * 30,
                               client=session)
            assert result["alice@example.org"][0] == 250
        lmtpd.cli("mailbox", "quota", "alice@example.org", "1K")
        assert rcpt_everywhere("alice@example.org") == {552}
    finally:
        for session in sessions:
            session.close()
