"""POP3 benchmark: login + STAT + LIST + UIDL on a large mailbox, and the server's memory
growth while it sends one very large message with RETR.

    .venv/bin/python bench/pop3_bench.py                    # 20,000 messages, a 50 MB RETR
    .venv/bin/python bench/pop3_bench.py --messages 200 --big-mb 5 --rounds 1   # smoke

The mailboxes are filled through the store API (Maildir files and index rows, fsync off),
not through LMTP, so setting up 20,000 messages takes seconds. Then a real `lmtpd serve`
is started on the throwaway store and measured over a real socket. Exits 1 when a figure is
over its limit (--max-seconds, --max-rss-mb).
"""

from __future__ import annotations

import argparse
import json
import poplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from dovecot import free_port, lmtpd_config  # bench/ is on the path: this is run as a script

from lmtpd import config as config_module
from lmtpd.spool import Spool
from lmtpd.store.index import MessageMeta
from lmtpd.store.mailboxes import Store

LMTPD = str(Path(sys.executable).parent / "lmtpd")
PASSWORD = "bench-password"
MANY = "many@example.org"
BIG = "big@example.org"


def write_config(root: Path, port: int) -> Path:
    path = root / "lmtpd.toml"
    # start_server waits for the "lmtpd ready" line, logged at level info.
    path.write_text(lmtpd_config(root, "example.org", fsync=False, log_level="info",
                                 pop3=f'listen = ["127.0.0.1:{port}"]'))
    return path


def populate(config_path: Path, messages: int, big_mb: int) -> None:
    store = Store(config_module.load(config_path))
    try:
        many = store.add_mailbox(MANY, PASSWORD)
        prefix = b"Return-Path: <bench@example.net>\nDelivered-To: " + MANY.encode() + b"\n"
        batch = 1000
        for start in range(0, messages, batch):
            with store.index.transaction():
                for n in range(start, min(start + batch, messages)):
                    body = (f"From: sender{n}@example.net\nSubject: message {n}\n"
                            f"Message-ID: <{n}@bench>\n\nbody of message {n}\n"
                            ".a line with a leading dot\n").encode()
                    stored = store.write_file(many, "INBOX", prefix, Spool.from_bytes(body))
                    meta = MessageMeta(f"<{n}@bench>", f"sender{n}@example.net", f"message {n}")
                    store.index.record_delivery(many.id, stored, meta)
        big = store.add_mailbox(BIG, PASSWORD)
        if big_mb:
            line = b"x" * 76 + b"\n"
            spool = Spool(threshold=1024 * 1024, directory=config_path.parent)
            spool.write(b"Subject: a big one\n\n")
            block = line * 13797  # ~1 MiB
            for _ in range(big_mb):
                spool.write(block)
            with spool:
                stored = store.write_file(big, "INBOX", b"", spool)
                store.index.record_delivery(big.id, stored, MessageMeta(subject="big"))
    finally:
        store.close()


def start_server(config_path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([LMTPD, "--config", str(config_path), "serve"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode(errors="replace")
        if not line:
            break
        if "lmtpd ready" in line:
            # Keep draining stderr so the server never blocks on a full pipe.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process
    process.kill()
    raise SystemExit("lmtpd did not start")


def listing_round(port: int, expected: int) -> float:
    started = time.perf_counter()
    client = poplib.POP3("127.0.0.1", port, timeout=60)
    client.user(MANY)
    client.pass_(PASSWORD)
    count, _ = client.stat()
    _, sizes, _ = client.list()
    _, uidls, _ = client.uidl()
    elapsed = time.perf_counter() - started
    client.quit()
    if not count == len(sizes) == len(uidls) == expected:
        raise SystemExit(f"expected {expected} messages, got {count}/{len(sizes)}/{len(uidls)}")
    return elapsed


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM summed over the server's main process and its workers (`processes`):
    the RETR may be served by any of them."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    values = {"VmRSS": 0, "VmHWM": 0}
    for one in [pid, *(int(c) for c in children)]:
        with open(f"/proc/{one}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] += int(rest.split()[0])
    return values


def big_retr(port: int, pid: int) -> dict[str, float]:
    """RETR the big message over a raw socket (read and dropped as it comes) while sampling
    the server's resident memory."""
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, memory_kb(pid)["VmRSS"])
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for command in (f"USER {BIG}", f"PASS {PASSWORD}", "LIST 1"):
            sock.sendall(command.encode() + b"\r\n")
            reply = reader.readline()
        size = int(reply.split()[2])
        # Measured once logged in, so only what the transfer itself costs is counted.
        before = memory_kb(pid)
        peak = before["VmRSS"]
        sampler.start()
        started = time.perf_counter()
        sock.sendall(b"RETR 1\r\n")
        reader.readline()
        received = 0
        tail = b""
        while not tail.endswith(b"\r\n.\r\n"):
            chunk = reader.read1(1 << 20)
            if not chunk:
                raise SystemExit("connection closed during RETR")
            received += len(chunk)
            tail = (tail + chunk)[-5:]
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        sock.sendall(b"QUIT\r\n")
        reader.readline()
    after = memory_kb(pid)
    hwm_growth = after["VmHWM"] - before["VmHWM"]
    peak = max(peak, after["VmRSS"], before["VmRSS"] + max(0, hwm_growth))
    return {
        "size_mb": size / 1024**2,
        "received_mb": received / 1024**2,
        "seconds": elapsed,
        "rss_before_mb": before["VmRSS"] / 1024,
        "rss_growth_mb": (peak - before["VmRSS"]) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--big-mb", type=int, default=50, help="size of the RETR test (0: skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=1.0)
    parser.add_argument("--max-rss-mb", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pop3-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        config_path = write_config(root, port)
        started = time.perf_counter()
        populate(config_path, args.messages, args.big_mb)
        setup = time.perf_counter() - started
        process = start_server(config_path)
        try:
            retr = big_retr(port, process.pid) if args.big_mb else None
            rounds = [listing_round(port, args.messages) for _ in range(args.rounds)]
        finally:
            process.terminate()
            process.wait(30)

    result = {
        "messages": args.messages,
        "setup_seconds": round(setup, 2),
        "login_stat_list_uidl_seconds": [round(r, 4) for r in rounds],
        "best_seconds": round(min(rounds), 4),
        "median_seconds": round(statistics.median(rounds), 4),
        "retr": {k: round(v, 2) for k, v in retr.items()} if retr else None,
    }
    failures = []
    if result["median_seconds"] > args.max_seconds:  # type: ignore[operator]
        failures.append(f"login+STAT+LIST+UIDL took {result['median_seconds']} s "
                        f"(limit {args.max_seconds} s)")
    if retr and retr["rss_growth_mb"] > args.max_rss_mb:
        failures.append(f"RETR grew the server by {retr['rss_growth_mb']:.1f} MB "
                        f"(limit {args.max_rss_mb} MB)")
    if args.json:
        print(json.dumps({**result, "failures": failures}))
    else:
        print(f"mailbox of {args.messages} messages (set up in {setup:.1f} s)")
        print(f"login+STAT+LIST+UIDL: median {result['median_seconds']} s, best "
              f"{result['best_seconds']} s over {len(rounds)} rounds")
        if retr:
            print(f"RETR of {retr['size_mb']:.1f} MB: {retr['seconds']:.2f} s, server RSS "
                  f"{retr['rss_before_mb']:.1f} MB before, growth {retr['rss_growth_mb']:.2f} MB")
        for failure in failures:
            print("FAIL:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
