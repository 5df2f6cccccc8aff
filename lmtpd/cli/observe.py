"""`lmtpd stats` and `lmtpd trace`."""

from __future__ import annotations

import json
import time

import click

from lmtpd.cli.common import config_option, fail, print_json, store_command
from lmtpd.store.mailboxes import Store


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def stats(store: Store, as_json: bool) -> None:
    """Per-mailbox counts and sizes, and delivery totals (last 24 h and all remembered)."""
    mailboxes = [store.info(row, with_folders=False).as_json(with_folders=False)
                 for row in store.index.list_mailboxes()]
    totals = store.index.delivery_totals()
    last_day = store.index.delivery_totals(time.time() - 86400)
    if as_json:
        print_json({"mailboxes": mailboxes, "deliveries": totals, "deliveries_24h": last_day})
        return
    click.echo(f"{'mailbox':40} {'messages':>9} {'bytes':>13} {'quota':>13} {'used':>5}")
    for item in mailboxes:
        quota = int(str(item["quota"]))
        used = f"{100 * int(str(item['bytes'])) // quota}%" if quota else "-"
        state = "" if item["enabled"] else " (disabled)"
        click.echo(f"{item['address']:40} {item['messages']:>9} {item['bytes']:>13} "
                   f"{quota or 'unlimited':>13} {used:>5}{state}")
    click.echo("")
    kinds = sorted(set(totals) | set(last_day))
    click.echo("deliveries   " + "  ".join(f"{k}={totals.get(k, 0)}" for k in kinds))
    click.echo("last 24h     " + "  ".join(f"{k}={last_day.get(k, 0)}" for k in kinds))


@click.command()
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def trace(store: Store, message_id: str, as_json: bool) -> None:
    """What happened to MESSAGE-ID, per recipient: reply, filter actions, files."""
    rows = store.index.trace(message_id)
    if not rows:
        fail(f"no delivery of {message_id} is remembered (lmtp.trace_retention)")
    for row in rows:
        row["files"] = json.loads(str(row["files"]))
        row["actions"] = json.loads(str(row["actions"]))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(row["at"]))))
        click.echo(f"{when} id={row['lmtp_id']} from=<{row['sender']}> "
                   f"rcpt=<{row['recipient']}> {row['outcome']} "
                   f"{row['code']} {row['status']} {row['reply']}")
        if row["stage"] == "rcpt":
            click.echo("    refused at RCPT")
        if row["original_to"]:
            click.echo(f"    original recipient (X-Original-To): {row['original_to']}")
        for action in row["actions"]:
            click.echo(f"    sieve: {action}")
        for file in row["files"]:
            click.echo(f"    stored: {file}")


COMMANDS = [stats, trace]
