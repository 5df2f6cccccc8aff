"""`lmtpd serve`, `lmtpd check-config` and `lmtpd deliver`."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import sys
import time

import click

from lmtpd.cli.common import State, config_option, fail
from lmtpd.config import Config
from lmtpd.delivery import Deliverer, Recipient, Transaction
from lmtpd.logs import setup_logging
from lmtpd.privileges import store_root_warning
from lmtpd.spool import Spool
from lmtpd.status import Reply
from lmtpd.store.index import IndexFailure
from lmtpd.store.mailboxes import Store
from lmtpd.store.worker import Workers

# sysexits(3), as dovecot-lda and Postfix's pipe(8) understand them.
EX_OK = 0
EX_USAGE = 64
EX_NOUSER = 67
EX_NOPERM = 77
EX_TEMPFAIL = 75


@click.command()
@config_option
@click.pass_obj
def serve(state: State) -> None:
    """Run the LMTP and POP3 servers until SIGTERM; SIGHUP reloads the configuration."""
    from lmtpd.errors import ServeError
    from lmtpd.server import serve as run_server

    config = state.config()
    setup_logging(config)
    try:
        run_server(config)
    except ServeError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot start: {error}")


@click.command("check-config")
@config_option
@click.pass_obj
def check_config(state: State) -> None:
    """Validate the configuration and print the effective settings."""
    config = state.config()
    warning = store_root_warning(config.store.root)
    if warning:
        click.echo(f"lmtpd: warning: {warning}", err=True)
    source = config.source or "embedded defaults"
    click.echo(f"# lmtpd effective configuration (from {source})")
    click.echo(config.to_toml(), nl=False)


def exit_status(replies: list[Reply]) -> int:
    if any(r.is_temporary for r in replies):
        return EX_TEMPFAIL
    failures = [r for r in replies if not r.is_success]
    if not failures:
        return EX_OK
    if any(r.enhanced.startswith("5.1.") for r in failures):
        return EX_NOUSER
    return EX_NOPERM


def crlf_to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


# All waits for another process's lock on the index together, so that `deliver` answers its
# MTA within 15 s: the index is opened with SQLite's busy timeout (10 s), and whatever is left
# of this budget is shared by every later wait (lmtpd.store.index.connection.limit_waits).
DELIVER_LOCK_BUDGET = 12.0
_PATH_BREAK = re.compile("[\r\n\x00]")


@click.command()
@click.option("--sender", "-f", default="", help="Envelope sender (default: the null sender).")
@click.argument("recipients", nargs=-1, required=True)
@config_option
@click.pass_obj
def deliver(state: State, sender: str, recipients: tuple[str, ...]) -> None:
    """Deliver a message from stdin to RECIPIENTS without LMTP (like dovecot-lda).

    Exit 0 delivered, 67 unknown user, 75 temporary failure (retry), 77 refused otherwise,
    64 for an address holding CR, LF or NUL. Any failure that is not the message's or the
    recipient's fault (locked index, full disk, I/O error) is 75: the MTA retries, and
    nothing was stored."""
    config = state.config()
    logging.basicConfig(level=logging.WARNING, format="lmtpd: %(message)s")
    if any(_PATH_BREAK.search(address) for address in (sender, *recipients)):
        click.echo("lmtpd: CR, LF or NUL in an address", err=True)
        sys.exit(EX_USAGE)
    deadline = time.monotonic() + DELIVER_LOCK_BUDGET
    try:
        data = crlf_to_lf(sys.stdin.buffer.read())
        replies = asyncio.run(_deliver(config, sender, recipients, data, deadline))
    except (sqlite3.Error, IndexFailure, OSError) as error:
        click.echo(f"lmtpd: temporary failure, nothing was delivered: {error}", err=True)
        sys.exit(EX_TEMPFAIL)
    except Exception:
        # A bug must not bounce mail: the MTA keeps it and retries.
        logging.exception("delivery failed, nothing was delivered")
        sys.exit(EX_TEMPFAIL)
    for rcpt, reply in zip(recipients, replies, strict=True):
        stream = sys.stdout if reply.is_success else sys.stderr
        click.echo(f"{rcpt}: {reply}", file=stream)
    sys.exit(exit_status(replies))


async def _deliver(config: Config, sender: str, recipients: tuple[str, ...], data: bytes,
                   deadline: float) -> list[Reply]:
    """One reply per recipient, in order, as LMTP would give them."""
    store = Store(config)
    workers = Workers(store, io_threads=2)
    try:
        await workers.db(lambda: store.index.limit_waits(deadline))
        deliverer = Deliverer(workers)
        accepted: list[Recipient] = []
        refused: list[tuple[str, Reply]] = []
        replies: list[Reply | None] = []
        for rcpt in recipients:
            refusal, recipient = await deliverer.check_rcpt(rcpt)
            replies.append(refusal)
            if refusal is None:
                accepted.append(recipient)
            else:
                refused.append((rcpt, refusal))
        with Spool.from_bytes(data) as body:
            tx = Transaction(sender=sender, recipients=accepted, body=body, lhlo="localhost",
                             too_big=len(data) > config.lmtp.max_message_size,
                             refused=refused)
            results = iter(await deliverer.deliver(tx))
        await deliverer.drain()
        return [r if r is not None else next(results) for r in replies]
    finally:
        workers.close()


COMMANDS = [serve, check_config, deliver]
