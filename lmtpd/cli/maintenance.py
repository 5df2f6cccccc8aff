"""`lmtpd reindex` and `lmtpd verify`."""

from __future__ import annotations

import click

from lmtpd.cli.common import config_option, print_json, store_command
from lmtpd.store import maintenance
from lmtpd.store.mailboxes import Store


@click.command()
@click.argument("address", required=False)
@config_option
@store_command
def reindex(store: Store, address: str | None) -> None:
    """Rebuild the message index from the Maildirs (all mailboxes, or ADDRESS).

    Every UIDL is kept; mailboxes, aliases, passwords and quotas are not touched. Delivery and
    POP3 keep working meanwhile."""
    total = maintenance.count_files(store, address)
    with click.progressbar(length=total, label="reindexing", file=click.get_text_stream("stderr"),
                           show_pos=True) as bar:
        added, removed = maintenance.reindex(store, address, progress=bar.update)
    click.echo(f"reindexed {total} messages: {added} rows added, {removed} stale rows removed")


@click.command()
@click.argument("address", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def verify(store: Store, address: str | None, as_json: bool) -> None:
    """Report drift between the index and the Maildirs; exit 1 if there is any."""
    drift = maintenance.verify(store, address)
    if as_json:
        print_json({"drift": [d.__dict__ for d in drift]})
    else:
        for item in drift:
            click.echo(str(item))
        if not drift:
            click.echo("index and Maildirs agree")
    if drift:
        if not as_json:
            click.echo(f"{len(drift)} problems; `lmtpd reindex` repairs the index", err=True)
        raise SystemExit(1)


COMMANDS = [reindex, verify]
