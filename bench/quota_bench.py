"""Delivery into a large mailbox with a quota, against delivery into an empty one.

A quota check must not cost more as a mailbox grows: lmtpd keeps each mailbox's usage as a
counter in the index, changed in the transaction that adds or removes a row. This bench fills
one mailbox with `--rows` message rows (rows only: the check reads the index, not the files),
gives it and an empty mailbox the same quota, and delivers to each in alternating rounds over
the LMTP socket, so both see the same machine.

    .venv/bin/python bench/quota_bench.py                     # 50,000 rows, c=1 and c=4
    .venv/bin/python bench/quota_bench.py --rows 5000 --messages 100 --rounds 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from dovecot import machine, parse_ints  # noqa: E402
from lmtp_bench import DOMAIN, Lmtpd, make_body, python_driver  # noqa: E402

QUOTA = "100G"
FULL = f"large@{DOMAIN}"
EMPTY = f"empty@{DOMAIN}"


def populate(target: Lmtpd, rows: int) -> None:
    """`rows` message rows for FULL, as deliveries would have left them, in one transaction."""
    from lmtpd import config as config_module
    from lmtpd.config import parse_size
    from lmtpd.store.index import MessageMeta
    from lmtpd.store.mailboxes import Store
    from lmtpd.store.maildir import StoredFile

    store = Store(config_module.load(target.config_path), durable_index=True)
    try:
        for address in (FULL, EMPTY):
            store.add_mailbox(address, None, quota=parse_size(QUOTA))
        mailbox = store.mailbox(FULL)
        now = time.time()
        found = [(StoredFile("INBOX", "new", f"{int(now)}.M{n}P1Q{n}.bench,S=2048,W=2100",
                             f"{int(now)}.M{n}P1Q{n}.bench", 2048, 2100, now, ""),
                  MessageMeta(message_id=f"<old{n}@bench>")) for n in range(rows)]
        store.index.apply_sync(mailbox.id, found, [], [])
    finally:
        store.close()


def measure(target: Lmtpd, rcpt: str, concurrency: int, messages: int, tag: str) -> float:
    elapsed, _ = python_driver(target.socket_path, concurrency, messages, [rcpt],
                               make_body(2048), tag)
    return messages / elapsed


def run(rows: int, concurrencies: Sequence[int], messages: int, rounds: int,
        workdir: Path) -> dict[str, object]:
    target = Lmtpd(workdir)
    populate(target, rows)
    target.start()
    cells: list[dict[str, float]] = []
    results: dict[str, object] = {"machine": machine(), "rows": rows, "messages": messages,
                                  "rounds": rounds, "cells": cells}
    try:
        for concurrency in concurrencies:
            rates: dict[str, list[float]] = {"empty": [], "large": []}
            for n in range(rounds):
                # Alternating, so that both mailboxes see the same disk and the same neighbours.
                for name, rcpt in (("empty", EMPTY), ("large", FULL)):
                    rates[name].append(
                        measure(target, rcpt, concurrency, messages, f"{name}{concurrency}.{n}"))
            empty, large = statistics.median(rates["empty"]), statistics.median(rates["large"])
            cells.append({"concurrency": concurrency, "empty": empty, "large": large,
                          "ratio": large / empty})
    finally:
        target.stop()
    return results


def render(results: dict[str, object]) -> str:
    lines = [f"machine: {results['machine']}",
             f"quota {QUOTA} on both; the large mailbox holds {results['rows']} messages; "
             f"{results['messages']} x 2 KB per round, median of {results['rounds']} rounds",
             "", "| c | empty mailbox (msg/s) | large mailbox (msg/s) | large / empty |",
             "|---|---|---|---|"]
    for cell in results["cells"]:  # type: ignore[attr-defined]
        lines.append(f"| {cell['concurrency']} | {cell['empty']:.0f} | {cell['large']:.0f} | "
                     f"{cell['ratio']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--concurrency", type=parse_ints, default=[1, 4])
    parser.add_argument("--messages", type=int, default=500, help="per round and mailbox")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lmtpd-quota-bench-") as workdir:
        results = run(args.rows, args.concurrency, args.messages, args.rounds, Path(workdir))
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
