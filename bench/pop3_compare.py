"""POP3 retrieval side by side: lmtpd and a private Dovecot on the same messages, alternating.

Cells: body size x concurrency. Each cell runs `--mailboxes` sessions (clients take mailboxes
from a queue): USER/PASS, UIDL, RETR of every message, QUIT. No DELE, so the stores are filled
once and reused by every cell. Plus login + STAT + LIST + UIDL on one large mailbox.

    .venv/bin/python bench/pop3_compare.py            # 100 x 200 messages, c = 1, 4, 16
    .venv/bin/python bench/pop3_compare.py --smoke    # 3 x 10 messages, c = 1, 2

Both stores hold the same message bytes under the same file names: lmtpd's is filled through
the store API (fsync off), Dovecot's by writing the Maildir files directly before it starts.
Every message is stored seen (`cur/...:2,S`), so RETR renames nothing and every round finds
the stores as the first did. Every RETR's octet count (dot-stuffing removed) is checked
against the size LIST gave for that message, on both systems.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The bench runs the lmtpd of this checkout, however (or whether) the package is installed.
sys.path[:0] = [str(HERE), str(REPO)]
import dovecot as dovecot_mod  # noqa: E402 (needs the path above)
from dovecot import machine, parse_ints, parse_sizes  # noqa: E402

from lmtpd import auth  # noqa: E402
from lmtpd import config as config_module  # noqa: E402
from lmtpd.spool import Spool  # noqa: E402
from lmtpd.store.index import MessageMeta  # noqa: E402
from lmtpd.store.mailboxes import Store  # noqa: E402

DOMAIN = "example.org"
PASSWORD = "bench-password"
LARGE = f"large@{DOMAIN}"
MB = 1_000_000  # MB/s is in 10^6 octets of what RETR sends (CRLF line ends)
TERMINATOR = b"\r\n.\r\n"


# -- messages ---------------------------------------------------------------------------------


def make_body(size: int) -> bytes:
    """`size` octets of LF-terminated lines as a delivery agent stores them; one line starts
    with a dot, so both servers' dot-stuffing is exercised (and checked)."""
    lines = [b".this line starts with a dot\n"]
    total = len(lines[0])
    n = 0
    while total < size:
        n += 1
        line = f"{n:06d} ".encode() + b"x" * 68 + b"\n"
        lines.append(line)
        total += len(line)
    text = b"".join(lines)[:size]
    return text[:-1] + b"\n"


def make_message(body: bytes, address: str, n: int) -> bytes:
    head = (f"Return-Path: <sender@example.net>\nDelivered-To: {address}\n"
            f"From: <sender{n}@example.net>\nTo: <{address}>\nSubject: message {n}\n"
            f"Message-ID: <{n}.{address}@bench>\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\n\n").encode()
    return head + body


def crlf_size(data: bytes) -> int:
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


# -- the systems under test -------------------------------------------------------------------


class System(Protocol):
    name: str
    port: int

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Lmtpd:
    """`lmtpd serve` on a throwaway store; log level warning, as Dovecot logs nothing per
    session either, so logging is not what gets measured."""

    name = "lmtpd"

    def __init__(self, root: Path, login_cache: str | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = dovecot_mod.free_port()
        cache = f"login_cache = {login_cache}\n" if login_cache is not None else ""
        self.config_path = root / "lmtpd.toml"
        # Room for c = 16 plus the warm-up; the default per-IP limit is 20.
        self.config_path.write_text(dovecot_mod.lmtpd_config(
            root, DOMAIN, fsync=False,
            pop3=f'listen = ["127.0.0.1:{self.port}"]\nmax_connections_per_ip = 100\n{cache}'))
        self.process: subprocess.Popen[bytes] | None = None
        self.store: Store | None = None

    def open_store(self) -> Store:
        self.store = Store(config_module.load(self.config_path))
        return self.store

    def close_store(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def start(self, timeout: float = 30.0) -> None:
        self.process = dovecot_mod.start_lmtpd(
            self.config_path, self.root / "lmtpd.log",
            lambda: dovecot_mod.connectable_tcp(self.port), timeout)

    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        dovecot_mod.stop_lmtpd(self.process)
        self.process = None


class _HashedDovecot(dovecot_mod.Dovecot):
    """The private Dovecot with a passwd-file whose users carry `scheme_hash` (e.g. the very
    argon2id hash lmtpd stores), so a login costs both servers the same password check."""

    scheme_hash = ""

    def _write_passwd(self) -> None:
        if not self.scheme_hash:
            super()._write_passwd()
            return
        rows = [f"{a}:{self.scheme_hash}:{self.uid}:{self.gid}::{self.maildir(a)}::"
                for a in self._users]
        tmp = self.passwd.with_suffix(".tmp")
        tmp.write_text("\n".join(rows) + ("\n" if rows else ""))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.passwd)


class DovecotPop3:
    name = "dovecot"

    def __init__(self, root: Path, scheme_hash: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.dc = _HashedDovecot(root, password=PASSWORD)
        self.dc.scheme_hash = scheme_hash
        self.port = self.dc.pop3_port
        self.dc.write_config()

    def add_mailbox(self, address: str) -> Path:
        self.dc.add_users([address])
        base = self.dc.maildir(address)
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        return base

    def write(self, base: Path, filename: str, data: bytes) -> None:
        path = base / "cur" / filename
        with open(path, "wb") as handle:
            handle.write(data)
        os.chown(path, self.dc.uid, self.dc.gid)

    def own(self) -> None:
        """Dovecot's mail processes run as its service user and create their index files in
        the Maildirs, so the tree the bench wrote as root must be theirs."""
        for dirpath, dirnames, _ in os.walk(self.dc.mail_root):
            os.chown(dirpath, self.dc.uid, self.dc.gid)
            for name in dirnames:
                os.chown(os.path.join(dirpath, name), self.dc.uid, self.dc.gid)

    def start(self) -> None:
        self.dc.start()

    def pid(self) -> int | None:
        return self.dc.process.pid if self.dc.process else None

    def stop(self) -> None:
        self.dc.stop()




# -- filling both stores ----------------------------------------------------------------------


def fill(lmtpd: Lmtpd, dovecot: DovecotPop3 | None,
         boxes: Sequence[tuple[str, int, int]]) -> float:
    """Mailboxes of (address, messages, body size) in both stores with identical bytes and
    file names; seconds taken."""
    started = time.perf_counter()
    store = lmtpd.open_store()
    # One argon2id hash for every mailbox (hashing costs ~0.1 s each); the same string goes
    # into Dovecot's passwd-file unless --dovecot-scheme plain.
    password_hash = auth.hash_password(PASSWORD)
    try:
        for address, count, size in boxes:
            body = make_body(size)
            mailbox = store.add_mailbox(address, None)
            store.index.set_password(mailbox.address, password_hash)
            target = dovecot.add_mailbox(address) if dovecot else None
            for start in range(0, count, 1000):
                with store.index.transaction():
                    for n in range(start, min(start + 1000, count)):
                        data = make_message(body, address, n)
                        stored = store.write_file(mailbox, "INBOX", b"", Spool.from_bytes(data),
                                                  flags=["S"])
                        meta = MessageMeta(f"<{n}.{address}@bench>", f"sender{n}@example.net",
                                           f"message {n}")
                        store.index.record_delivery(mailbox.id, stored, meta)
                        if dovecot and target:
                            dovecot.write(target, stored.filename, data)
    finally:
        lmtpd.close_store()
    if dovecot:
        dovecot.own()
    return time.perf_counter() - started


# -- the client -------------------------------------------------------------------------------


class Pop3Error(Exception):
    pass


class Client:
    """A lean blocking POP3 client: whole socket reads into one buffer and a search for the
    terminator, instead of poplib's one Python call per line, so that at 100 KB bodies the
    client is not what limits the rate."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.line()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise Pop3Error("connection closed")
        self.buf += chunk

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        out = bytes(self.buf[:end])
        del self.buf[:end + 2]
        if not out.startswith(b"+OK"):
            raise Pop3Error(out.decode(errors="replace"))
        return out

    def command(self, text: str) -> bytes:
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def multiline(self, text: str) -> bytes:
        """The payload of a multi-line reply, still dot-stuffed, without the final '.'."""
        self.command(text)
        # The status line's CRLF was consumed, so an empty payload is a bare ".\r\n".
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return b""
        start = 0
        while (end := self.buf.find(TERMINATOR, start)) < 0:
            start = max(0, len(self.buf) - 4)
            self._fill()
        out = bytes(self.buf[:end + 2])
        del self.buf[:end + 5]
        return out

    def login(self, user: str) -> None:
        self.command(f"USER {user}")
        self.command(f"PASS {PASSWORD}")

    def listing(self, text: str) -> list[tuple[int, str]]:
        rows = []
        for line in self.multiline(text).splitlines():
            number, value = line.split(b" ", 1)
            rows.append((int(number), value.decode()))
        return rows

    def retr(self, number: int) -> int:
        """Octets of the message as the server sent them, dot-stuffing removed."""
        payload = self.multiline(f"RETR {number}")
        stuffed = payload.count(b"\n.") + payload.startswith(b".")
        return len(payload) - stuffed

    def quit(self) -> None:
        with contextlib.suppress(OSError, Pop3Error):
            self.command("QUIT")
        self.sock.close()


# -- measurements -----------------------------------------------------------------------------


@dataclass
class Cell:
    size: int
    concurrency: int

    @property
    def label(self) -> str:
        return f"{self.size // 1024} KB, c={self.concurrency}"


@dataclass
class Run:
    system: str
    cell: str
    messages: int
    octets: int
    seconds: float

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.octets / MB / self.seconds


def survey(port: int, addresses: Sequence[str]) -> dict[str, list[int]]:
    """LIST sizes per mailbox (untimed). It also lets Dovecot build its index files, and
    lmtpd warm its index pages, before anything is measured."""
    sizes = {}
    for address in addresses:
        client = Client(port)
        client.login(address)
        sizes[address] = [size for _, size in ((n, int(v)) for n, v in client.listing("LIST"))]
        client.listing("UIDL")
        client.quit()
    return sizes


def retrieve_all(port: int, addresses: Sequence[str], concurrency: int,
                 sizes: dict[str, list[int]], system: str, label: str) -> Run:
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for address in addresses:
        todo.put(address)
    counts = {"messages": 0, "octets": 0}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            while True:
                try:
                    address = todo.get_nowait()
                except queue.Empty:
                    return
                client = Client(port)
                client.login(address)
                uidls = client.listing("UIDL")
                expected = sizes[address]
                if len(uidls) != len(expected):
                    raise Pop3Error(f"{system} {address}: UIDL lists {len(uidls)} messages, "
                                    f"LIST {len(expected)}")
                octets = 0
                for number, want in enumerate(expected, 1):
                    got = client.retr(number)
                    if got != want:
                        raise Pop3Error(f"{system} {address} RETR {number}: {got} octets, "
                                        f"LIST said {want}")
                    octets += got
                client.quit()
                with lock:
                    counts["messages"] += len(expected)
                    counts["octets"] += octets
        except BaseException as error:  # handed to the caller, which re-raises it
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Run(system, label, counts["messages"], counts["octets"], elapsed)


def listing_round(port: int, address: str, expected: int) -> float:
    started = time.perf_counter()
    client = Client(port)
    client.login(address)
    count = int(client.command("STAT").split()[1])
    sizes = client.listing("LIST")
    uidls = client.listing("UIDL")
    elapsed = time.perf_counter() - started
    client.quit()
    if not count == len(sizes) == len(uidls) == expected:
        raise Pop3Error(f"expected {expected} messages, got {count}/{len(sizes)}/{len(uidls)}")
    return elapsed


@dataclass
class Listing:
    system: str
    messages: int
    first: float  # the very first session: Dovecot builds its index here
    rounds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)


# -- the whole run ----------------------------------------------------------------------------


@dataclass
class Options:
    mailboxes: int
    messages: int
    sizes: list[int]
    concurrency: list[int]
    large: int
    rounds: int
    listing_rounds: int
    dovecot: bool
    dovecot_scheme: str
    login_cache: str | None = None


def run_all(options: Options, workdir: Path, out: Callable[[str], None] = print) -> dict:
    os.chmod(workdir, 0o755)  # Dovecot's processes must traverse it
    lmtpd = Lmtpd(workdir / "lmtpd", options.login_cache)
    dovecot = None
    if options.dovecot:
        scheme_hash = ""  # dovecot.py's default: {PLAIN}
        dovecot = DovecotPop3(workdir / "dovecot", scheme_hash)
    boxes_by_size = {size: [f"u{size // 1024}k-{i:03d}@{DOMAIN}" for i in range(options.mailboxes)]
                     for size in options.sizes}
    plan = [(a, options.messages, size) for size, boxes in boxes_by_size.items() for a in boxes]
    if options.large:
        plan.append((LARGE, options.large, 2048))
    seconds = fill(lmtpd, dovecot, plan)
    if dovecot and options.dovecot_scheme == "same":
        # The very hash lmtpd stored for every mailbox (all share one), as Dovecot reads it.
        store = lmtpd.open_store()
        try:
            dovecot.dc.scheme_hash = "{ARGON2ID}" + store.mailbox(plan[0][0]).password_hash
        finally:
            lmtpd.close_store()
        dovecot.dc.write_config()
    total = sum(count for _, count, _ in plan)
    out(f"  filled {len(plan)} mailboxes, {total:,} messages per system in {seconds:.1f} s")
    systems: list[System] = [lmtpd] + ([dovecot] if dovecot else [])
    for system in systems:
        system.start()
    runs: list[Run] = []
    listings: list[Listing] = []
    sizes: dict[str, dict[str, list[int]]] = {}
    try:
        if options.large:
            for system in systems:
                first = listing_round(system.port, LARGE, options.large)
                listings.append(Listing(system.name, options.large, first))
            for n in range(options.listing_rounds):
                for system in _alternate(systems, n):
                    result = next(x for x in listings if x.system == system.name)
                    result.rounds.append(listing_round(system.port, LARGE, options.large))
            for result in listings:
                out(f"  {result.system:8} login+STAT+LIST+UIDL {options.large:,} messages: "
                    f"first {result.first:.3f} s, median {result.median:.3f} s")
        for system in systems:
            started = time.perf_counter()
            sizes[system.name] = survey(system.port, [a for a, _, s in plan if a != LARGE])
            out(f"  {system.name:8} LIST/UIDL survey of every mailbox: "
                f"{time.perf_counter() - started:.1f} s")
        # Same bytes in, so both must report the same sizes.
        if dovecot and sizes["lmtpd"] != sizes["dovecot"]:
            raise Pop3Error("LIST sizes differ between lmtpd and Dovecot")
        number = 0
        for _ in range(options.rounds):
            for size in options.sizes:
                for concurrency in options.concurrency:
                    cell = Cell(size, concurrency)
                    # Alternate which system goes first, so neither always runs warmer.
                    for system in _alternate(systems, number):
                        run = retrieve_all(system.port, boxes_by_size[size], concurrency,
                                           sizes[system.name], system.name, cell.label)
                        runs.append(run)
                        out(f"  {system.name:8} {cell.label:14} {run.msgs_per_s:9,.0f} msg/s "
                            f"{run.mb_per_s:7.1f} MB/s ({run.seconds:.1f} s)")
                    number += 1
    finally:
        for system in systems:
            system.stop()
    return {"runs": runs, "listings": listings, "fill_seconds": seconds}


def _alternate(systems: list[System], number: int) -> list[System]:
    return systems if number % 2 == 0 else systems[::-1]


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def best(runs: list[Run], system: str, cell: str) -> Run | None:
    """The median run of a cell over the rounds (the only one when --rounds 1)."""
    mine = sorted((r for r in runs if r.system == system and r.cell == cell),
                  key=lambda r: r.mb_per_s)
    return mine[len(mine) // 2] if mine else None


def render(results: dict, compare: bool) -> str:
    runs: list[Run] = results["runs"]
    cells = list(dict.fromkeys(r.cell for r in runs))
    header = "| cell | lmtpd msg/s | lmtpd MB/s |"
    rule = "|---|---|---|"
    if compare:
        header += " Dovecot msg/s | Dovecot MB/s | ratio msg/s | ratio MB/s |"
        rule += "---|---|---|---|"
    lines = ["POP3: login, UIDL, RETR all, QUIT per mailbox (MB = 10^6 octets as sent)", "",
             header, rule]
    for cell in cells:
        ours = best(runs, "lmtpd", cell)
        row = f"| {cell} | {ours.msgs_per_s:,.0f} | {ours.mb_per_s:,.1f} |" if ours else \
            f"| {cell} | - | - |"
        if compare:
            theirs = best(runs, "dovecot", cell)
            if theirs and ours:
                row += (f" {theirs.msgs_per_s:,.0f} | {theirs.mb_per_s:,.1f} |"
                        f" {ratio(ours.msgs_per_s, theirs.msgs_per_s)} |"
                        f" {ratio(ours.mb_per_s, theirs.mb_per_s)} |")
            else:
                row += " - | - | - | - |"
        lines.append(row)
    listings: list[Listing] = results["listings"]
    if listings:
        lines += ["", f"Login + STAT + LIST + UIDL, one mailbox of {listings[0].messages:,} "
                  "messages (s; first session, then median of the rest)", ""]
        for result in listings:
            lines.append(f"- {result.system}: first {result.first:.3f}, median "
                         f"{result.median:.3f} over {len(result.rounds)}")
    return "\n".join(lines)








def pop3_available() -> bool:
    return dovecot_mod.available() and os.access("/usr/lib/dovecot/pop3", os.X_OK)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="3 mailboxes x 10 messages, c = 1 and 2, Dovecot only if installed")
    parser.add_argument("--mailboxes", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200, help="messages per mailbox")
    parser.add_argument("--sizes", default="2k,100k", help="body sizes, e.g. 2k,100k")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--large", type=int, default=20_000,
                        help="messages of the login+STAT+LIST+UIDL mailbox (0: skip)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every cell per system")
    parser.add_argument("--listing-rounds", type=int, default=3)
    parser.add_argument("--no-dovecot", action="store_true", help="lmtpd only")
    parser.add_argument("--dovecot-scheme", choices=("same", "plain"), default="same",
                        help="Dovecot's passwd-file holds lmtpd's argon2id hash (same) or "
                             "{PLAIN}")
    parser.add_argument("--login-cache", metavar="SECONDS",
                        help="lmtpd's pop3.login_cache (default: lmtpd's own, 900); 0 makes "
                             "every login a full argon2 check, as Dovecot does by default")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.mailboxes, args.messages, args.concurrency = 3, 10, "1,2"
        args.large, args.listing_rounds = 50, 1
    use_dovecot = not args.no_dovecot and pop3_available()
    if not args.no_dovecot and not args.smoke and not use_dovecot:
        parser.error("needs dovecot-core and dovecot-pop3d installed (or --no-dovecot)")
    options = Options(args.mailboxes, args.messages, parse_sizes(args.sizes),
                      parse_ints(args.concurrency),
                      args.large, args.rounds, args.listing_rounds, use_dovecot,
                      args.dovecot_scheme, args.login_cache)
    print(machine())
    print("command:", " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]))
    print(f"Dovecot passwd-file: {args.dovecot_scheme if use_dovecot else 'not run'}")
    print(f"lmtpd pop3.login_cache: {args.login_cache or 'default'}")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run_all(options, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="pop3-compare-") as tmp:
            results = run_all(options, Path(tmp))
    print()
    print(render(results, use_dovecot))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(),
            "dovecot_scheme": args.dovecot_scheme if use_dovecot else None,
            "runs": [dict(asdict(r), msgs_per_s=r.msgs_per_s, mb_per_s=r.mb_per_s)
                     for r in results["runs"]],
            "listings": [dict(asdict(x), median=x.median) for x in results["listings"]],
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
