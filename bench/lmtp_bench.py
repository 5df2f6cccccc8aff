"""LMTP delivery benchmark: lmtpd on a throwaway store (fsync on), optionally side by side with
a private Dovecot (`--compare`), driven over their Unix sockets by the same clients.

Cells: concurrency x body size x recipients per message. The throughput driver is Postfix's
`smtp-source -L` for single-recipient cells (when installed) and a Python pipelining client
for multi-recipient cells; the Python client also gives per-transaction latency (p50/p99) in
every cell. After every run the message files are counted on disk; a shortfall fails the run.

    .venv/bin/python bench/lmtp_bench.py                  # lmtpd only
    .venv/bin/python bench/lmtp_bench.py --compare        # lmtpd and Dovecot, alternating
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The bench runs the lmtpd of this checkout, however (or whether) the package is installed.
sys.path[:0] = [str(HERE), str(REPO)]
import dovecot as dovecot_mod  # noqa: E402 (needs the path above)
from dovecot import machine, parse_ints, parse_sizes  # noqa: E402

DOMAIN = "example.org"
SENDER = f"sender@{DOMAIN}"
LINE = b"X" * 76


def find_smtp_source() -> str | None:
    """Postfix's smtp-source if it can be run here (Debian puts it outside $PATH)."""
    return shutil.which("smtp-source") or next(
        (p for p in ("/usr/sbin/smtp-source", "/usr/lib/postfix/sbin/smtp-source")
         if os.access(p, os.X_OK)), None)


# -- the systems under test -------------------------------------------------------------------


class Target(Protocol):
    name: str
    socket_path: Path

    def add_users(self, addresses: Sequence[str]) -> None: ...

    def maildir(self, address: str) -> Path: ...

    def server_pids(self) -> list[int]: ...


class Lmtpd:
    """`lmtpd serve` on a fresh store under `root`, log level warning so logging is not what
    gets measured."""

    name = "lmtpd"

    def __init__(self, root: Path, *, max_message_size: int = 64 * 1024**2) -> None:
        self.root = root
        self.socket_path = root / "lmtp.sock"
        self.store_root = root / "store"
        self.config_path = root / "lmtpd.toml"
        self.config_path.write_text(dovecot_mod.lmtpd_config(
            root, DOMAIN, fsync=True, lmtp=f"max_message_size = {max_message_size}\n",
            pop3=f'listen = ["127.0.0.1:{dovecot_mod.free_port()}"]'))
        self.process: subprocess.Popen[bytes] | None = None

    def add_users(self, addresses: Sequence[str]) -> None:
        # In-process rather than one CLI call per mailbox: hundreds of mailboxes, no passwords
        # needed for LMTP. The index is in WAL mode, so this is safe while the server runs.
        from lmtpd import config as config_module
        from lmtpd.store.mailboxes import Store

        store = Store(config_module.load(self.config_path), durable_index=True)
        try:
            for address in addresses:
                store.add_mailbox(address, None)
        finally:
            store.close()

    def maildir(self, address: str) -> Path:
        local, domain = address.lower().split("@")
        return self.store_root / "mail" / domain / local

    def start(self, timeout: float = 30.0) -> None:
        self.process = dovecot_mod.start_lmtpd(
            self.config_path, self.root / "lmtpd.log",
            lambda: dovecot_mod.connectable_unix(self.socket_path), timeout)

    def server_pids(self) -> list[int]:
        """The main process and its workers (`processes`): a message may go to any of them."""
        if not self.process:
            return []
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *(int(c) for c in children)]

    def stop(self) -> None:
        dovecot_mod.stop_lmtpd(self.process)
        self.process = None


class DovecotTarget:
    name = "dovecot"

    def __init__(self, root: Path) -> None:
        self.dc = dovecot_mod.Dovecot(root)
        self.socket_path = self.dc.socket_path

    def add_users(self, addresses: Sequence[str]) -> None:
        self.dc.add_users(addresses)

    def maildir(self, address: str) -> Path:
        return self.dc.maildir(address)

    def server_pids(self) -> list[int]:
        return self.dc.pids("lmtp")

    def start(self) -> None:
        self.dc.write_config()
        self.dc.start()

    def stop(self) -> None:
        self.dc.stop()




def count_messages(target: Target, addresses: Sequence[str]) -> int:
    total = 0
    for address in addresses:
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                total += sum(1 for e in os.scandir(target.maildir(address) / sub)
                             if not e.name.startswith("."))
    return total


# -- messages ---------------------------------------------------------------------------------


def make_body(size: int) -> bytes:
    """`size` octets of CRLF body lines, already safe on the wire (no line starts with '.')."""
    lines = []
    total = 0
    for n in itertools.count(1):
        line = f"{n:06d}".encode() + LINE[6:] + b"\r\n"
        lines.append(line)
        total += len(line)
        if total >= size:
            break
    text = b"".join(lines)[: max(0, size - 2)].rstrip(b"\r\n")
    return text + b"X" * (size - 2 - len(text)) + b"\r\n"


def make_message(body: bytes, rcpt: str, serial: str) -> bytes:
    head = (f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: bench {serial}\r\n"
            f"Message-ID: <{serial}@bench.{DOMAIN}>\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n").encode()
    return head + body + b".\r\n"


# -- the Python driver ------------------------------------------------------------------------


class LmtpError(Exception):
    pass


class Client:
    """One LMTP connection that pipelines MAIL, RCPT x N and DATA (both servers offer
    PIPELINING) and reads one final reply per recipient."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, path: Path) -> Client:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 20)
        client = cls(reader, writer)
        await client.reply()
        writer.write(b"LHLO bench.example.org\r\n")
        await client.reply()
        return client

    async def reply(self) -> tuple[int, str]:
        text = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise LmtpError("connection closed")
            text.append(line.decode("utf-8", "replace").rstrip())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(text)

    async def send(self, rcpts: Sequence[str], message: bytes) -> None:
        envelope = [f"MAIL FROM:<{SENDER}>\r\n"]
        envelope += [f"RCPT TO:<{r}>\r\n" for r in rcpts]
        envelope.append("DATA\r\n")
        self.writer.write("".join(envelope).encode())
        for _ in range(len(rcpts) + 1):
            code, text = await self.reply()
            if code != 250:
                raise LmtpError(text)
        code, text = await self.reply()
        if code != 354:
            raise LmtpError(text)
        self.writer.write(message)
        for _ in rcpts:
            code, text = await self.reply()
            if code != 250:
                raise LmtpError(text)

    async def close(self) -> None:
        self.writer.write(b"QUIT\r\n")
        with contextlib.suppress(LmtpError):
            await self.reply()
        self.writer.close()


async def _drive(path: Path, concurrency: int, messages: int, rcpts: Sequence[str],
                 body: bytes, tag: str) -> tuple[float, list[float]]:
    counter = itertools.count()
    latencies: list[float] = []

    async def worker() -> None:
        client = await Client.connect(path)
        try:
            while (n := next(counter)) < messages:
                message = make_message(body, rcpts[0], f"{tag}.{n}")
                started = time.perf_counter()
                await client.send(rcpts, message)
                latencies.append(time.perf_counter() - started)
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def python_driver(path: Path, concurrency: int, messages: int, rcpts: Sequence[str],
                  body: bytes, tag: str) -> tuple[float, list[float]]:
    return asyncio.run(_drive(path, concurrency, messages, rcpts, body, tag))


def smtp_source_driver(tool: str, path: Path, concurrency: int, messages: int, user: str,
                       nrcpt: int, size: int) -> float:
    # -d keeps each session open for the next message, as Postfix does under load.
    command = [tool, "-L", "-d", "-s", str(concurrency), "-m", str(messages), "-l", str(size),
               "-f", SENDER, "-t", user, "-r", str(nrcpt), f"unix:{path}"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise LmtpError(f"smtp-source failed: {result.stderr.strip()}")
    return elapsed


def smtp_source_rcpts(user: str, nrcpt: int) -> list[str]:
    """The recipients smtp-source -r N sends to: the address itself, then 2user, 3user..."""
    return [user if i == 1 else f"{i}{user}" for i in range(1, nrcpt + 1)]


# -- cells ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    concurrency: int
    size: int
    rcpts: int

    @property
    def label(self) -> str:
        size = f"{self.size // 1024} KB" if self.size >= 1024 else f"{self.size} B"
        return f"{size}, {self.rcpts} rcpt{'s' if self.rcpts > 1 else ''}, c={self.concurrency}"


@dataclass
class Run:
    system: str
    cell: Cell
    driver: str
    messages: int
    deliveries: int
    seconds: float
    on_disk: int
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def rate(self) -> float:
        """Deliveries per second (messages/s for one recipient)."""
        return self.deliveries / self.seconds if self.seconds else 0.0


_user_serial = itertools.count(1)


def fresh_users(nrcpt: int) -> list[str]:
    """New mailboxes for every run, so no run delivers into a mailbox an earlier run filled
    (Dovecot's cost grows with the mailbox; that is measured separately, by the growth run)."""
    base = f"b{next(_user_serial)}@{DOMAIN}"
    return smtp_source_rcpts(base, nrcpt)


def run_cell(target: Target, cell: Cell, driver: str, messages: int,
             smtp_source: str | None, rcpts: list[str]) -> Run:
    before = count_messages(target, rcpts)
    p50 = p99 = None
    if driver == "smtp-source":
        assert smtp_source
        seconds = smtp_source_driver(smtp_source, target.socket_path, cell.concurrency,
                                     messages, rcpts[0], cell.rcpts, cell.size)
    else:
        body = make_body(cell.size)
        seconds, latencies = python_driver(target.socket_path, cell.concurrency, messages,
                                           rcpts, body, rcpts[0].split("@")[0])
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    on_disk = count_messages(target, rcpts) - before
    expected = messages * cell.rcpts
    if on_disk != expected:
        raise LmtpError(f"{target.name} {cell.label} {driver}: {on_disk} message files on disk,"
                        f" expected {expected}")
    return Run(target.name, cell, driver, messages, expected, seconds, on_disk, p50, p99)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index] * 1000


# -- growth and memory ------------------------------------------------------------------------


@dataclass
class Growth:
    system: str
    chunk: int
    rates: list[float] = field(default_factory=list)

    @property
    def last_over_first(self) -> float:
        return self.rates[-1] / self.rates[0] if self.rates else 0.0


async def _growth(path: Path, rcpt: str, total: int, chunk: int) -> list[float]:
    body = make_body(2048)
    client = await Client.connect(path)
    rates = []
    try:
        for start in range(0, total, chunk):
            began = time.perf_counter()
            for n in range(start, min(total, start + chunk)):
                await client.send([rcpt], make_message(body, rcpt, f"growth.{n}"))
            rates.append((min(total, start + chunk) - start) / (time.perf_counter() - began))
    finally:
        await client.close()
    return rates


def run_growth(target: Target, rcpt: str, total: int, chunk: int) -> Growth:
    rates = asyncio.run(_growth(target.socket_path, rcpt, total, chunk))
    on_disk = count_messages(target, [rcpt])
    if on_disk != total:
        raise LmtpError(f"{target.name} growth: {on_disk} files on disk, expected {total}")
    return Growth(target.name, chunk, rates)


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Memory:
    system: str
    size_mb: int
    baseline_mb: float
    peak_mb: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.baseline_mb


class RssSampler:
    """Samples the summed RSS of the processes `pids()` returns every few milliseconds (new
    server processes, such as a Dovecot lmtp child forked for the session, are picked up)."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.005) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids = self.pids()
        last_lookup = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - last_lookup > 0.2:
                pids, last_lookup = self.pids(), time.monotonic()
            self.peak = max(self.peak, sum(rss_kb(p) for p in pids))
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_memory(target: Target, rcpt: str, size_mb: int) -> Memory:
    body = make_body(size_mb * 1000 * 1000)

    async def send() -> None:
        client = await Client.connect(target.socket_path)
        try:
            await client.send([rcpt], make_message(body, rcpt, "memory"))
        finally:
            await client.close()

    # Warm-up: a small message, so the baseline includes an open session's fixed costs.
    python_driver(target.socket_path, 1, 1, [rcpt], make_body(2048), "memory-warmup")
    time.sleep(0.2)
    baseline = sum(rss_kb(p) for p in target.server_pids())
    with RssSampler(target.server_pids) as sampler:
        asyncio.run(send())
    if count_messages(target, [rcpt]) != 2:
        raise LmtpError(f"{target.name}: the {size_mb} MB message is not on disk")
    return Memory(target.name, size_mb, baseline / 1024, max(sampler.peak, baseline) / 1024)


# -- orchestration ----------------------------------------------------------------------------


@dataclass
class Options:
    concurrency: list[int]
    sizes: list[int]
    rcpts: list[int]
    messages: int
    latency_messages: int
    growth: int
    growth_chunk: int
    memory_mb: int
    compare: bool
    use_smtp_source: bool


def iter_cells(options: Options) -> Iterator[Cell]:
    for r in options.rcpts:
        for s in options.sizes:
            for c in options.concurrency:
                yield Cell(c, s, r)


def headline_driver(cell: Cell, smtp_source: str | None) -> str:
    return "smtp-source" if smtp_source and cell.rcpts == 1 else "python"


def run_all(options: Options, workdir: Path, out: Callable[[str], None] = print) -> dict:
    smtp_source = find_smtp_source() if options.use_smtp_source else None
    (workdir / "lmtpd").mkdir()
    targets: list[Lmtpd | DovecotTarget] = [Lmtpd(workdir / "lmtpd")]
    if options.compare:
        # Dovecot's auth and mail processes run as its service users and must traverse this.
        os.chmod(workdir, 0o755)
        (workdir / "dovecot").mkdir()
        targets.append(DovecotTarget(workdir / "dovecot"))
    cells = list(iter_cells(options))
    # Every run gets mailboxes of its own, all created before the servers start (Dovecot
    # notices passwd-file changes only by mtime in whole seconds and size).
    plan: list[tuple[Cell, str, int, Target, list[str]]] = []
    for number, cell in enumerate(cells):
        head = headline_driver(cell, smtp_source)
        drivers = [(head, options.messages)]
        if head != "python" and options.latency_messages:
            drivers.append(("python", options.latency_messages))
        # Alternate which system goes first, so neither always runs on a warmer machine.
        order = targets if number % 2 == 0 else targets[::-1]
        plan += [(cell, driver, count, target, fresh_users(cell.rcpts))
                 for driver, count in drivers for target in order]
    growth_users = {t.name: fresh_users(1)[0] for t in targets}
    memory_users = {t.name: fresh_users(1)[0] for t in targets}
    for target in targets:
        target.add_users([u for *_, t, users in plan if t is target for u in users]
                         + [growth_users[target.name], memory_users[target.name]])
        target.start()
    runs: list[Run] = []
    growth: list[Growth] = []
    memory: list[Memory] = []
    try:
        for cell, driver, count, target, users in plan:
            run = run_cell(target, cell, driver, count, smtp_source, users)
            runs.append(run)
            out(f"  {target.name:8} {cell.label:24} {driver:11} {run.rate:8.0f}/s"
                + (f"  p50 {run.p50_ms:.1f} ms p99 {run.p99_ms:.1f} ms"
                   if run.p50_ms is not None else ""))
        if options.growth:
            for target in targets:
                result = run_growth(target, growth_users[target.name], options.growth,
                                    options.growth_chunk)
                growth.append(result)
                out(f"  {target.name:8} growth " + " ".join(f"{r:.0f}" for r in result.rates))
        if options.memory_mb:
            for target in targets:
                result = run_memory(target, memory_users[target.name], options.memory_mb)
                memory.append(result)
                out(f"  {target.name:8} {options.memory_mb} MB message: peak RSS "
                    f"{result.peak_mb:.1f} MB (+{result.growth_mb:.1f} MB)")
    finally:
        for target in targets:
            target.stop()
    return {"runs": runs, "growth": growth, "memory": memory, "smtp_source": smtp_source}


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def render(results: dict, compare: bool) -> str:
    runs: list[Run] = results["runs"]
    lines = []
    by_key = {(r.system, r.cell, r.driver): r for r in runs}
    cells = list(dict.fromkeys(r.cell for r in runs))
    header = "| cell | driver | lmtpd /s | lmtpd p50/p99 ms |"
    rule = "|---|---|---|---|"
    if compare:
        header += " Dovecot /s | Dovecot p50/p99 ms | ratio |"
        rule += "---|---|---|"
    lines += ["LMTP (messages/s for 1 rcpt, deliveries/s for 10 rcpts; "
              "p50/p99 per transaction from the Python driver)", "", header, rule]

    def latency(run: Run | None) -> str:
        if run is None or run.p50_ms is None:
            return "-"
        return f"{run.p50_ms:.1f} / {run.p99_ms:.1f}"

    for cell in cells:
        drivers = list(dict.fromkeys(r.driver for r in runs if r.cell == cell))
        head = drivers[0]
        ours = by_key.get(("lmtpd", cell, head))
        lat_ours = by_key.get(("lmtpd", cell, "python"))
        row = f"| {cell.label} | {head} | {ours.rate:,.0f} | {latency(lat_ours)} |" if ours else ""
        if compare:
            theirs = by_key.get(("dovecot", cell, head))
            lat_theirs = by_key.get(("dovecot", cell, "python"))
            row += (f" {theirs.rate:,.0f} | {latency(lat_theirs)} |"
                    f" {ratio(ours.rate if ours else None, theirs.rate if theirs else None)} |"
                    if theirs else " - | - | - |")
        lines.append(row)
    if results["growth"]:
        lines += ["", "Mailbox growth: one session, one mailbox, msg/s per chunk of "
                  f"{results['growth'][0].chunk}", ""]
        for g in results["growth"]:
            lines.append(f"- {g.system}: " + ", ".join(f"{r:.0f}" for r in g.rates)
                         + f" (last/first {g.last_over_first:.2f})")
    if results["memory"]:
        lines += ["", "Peak RSS while receiving one large message over LMTP", ""]
        for m in results["memory"]:
            lines.append(f"- {m.system} ({m.size_mb} MB message): baseline "
                         f"{m.baseline_mb:.1f} MB, peak {m.peak_mb:.1f} MB, "
                         f"growth {m.growth_mb:.1f} MB")
    return "\n".join(lines)








def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="also run a private Dovecot")
    parser.add_argument("--messages", type=int, default=2000, help="messages per cell")
    parser.add_argument("--latency-messages", type=int, default=500,
                        help="messages of the extra Python latency run in smtp-source cells")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--sizes", default="2k,100k", help="body sizes, e.g. 2k,100k")
    parser.add_argument("--rcpts", default="1,10")
    parser.add_argument("--growth", type=int, default=10000,
                        help="messages of the mailbox-growth run (0: skip)")
    parser.add_argument("--growth-chunk", type=int, default=1000)
    parser.add_argument("--memory-mb", type=int, default=50,
                        help="size of the large-message RSS run (0: skip)")
    parser.add_argument("--no-smtp-source", action="store_true",
                        help="use the Python driver everywhere")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.compare and not dovecot_mod.available():
        parser.error("--compare needs dovecot-core and dovecot-lmtpd installed")
    options = Options(parse_ints(args.concurrency), parse_sizes(args.sizes), parse_ints(args.rcpts),
                      args.messages, args.latency_messages, args.growth, args.growth_chunk,
                      args.memory_mb, args.compare, not args.no_smtp_source)
    print(machine())
    print("command:", " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]))
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run_all(options, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="lmtpd-bench-") as tmp:
            results = run_all(options, Path(tmp))
    print()
    print(render(results, args.compare))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(),
            "runs": [dict(asdict(r), rate=r.rate) for r in results["runs"]],
            "growth": [asdict(g) for g in results["growth"]],
            "memory": [asdict(m) for m in results["memory"]],
        }, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
