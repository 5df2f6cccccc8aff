"""`lmtpd mailbox ...` and `lmtpd alias ...`."""

from __future__ import annotations

import sys

import click

from lmtpd.cli.common import config_option, fail, print_json, store_command
from lmtpd.config import parse_size
from lmtpd.store.mailboxes import Store


def read_password(from_stdin: bool) -> str:
    """From one line of stdin, or a prompt that does not echo. Never logged or printed."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    if not password:
        fail("the password is empty")
    return password


def parse_quota(value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.group()
@config_option
def mailbox() -> None:
    """Create, inspect and change mailboxes."""


@mailbox.command("add")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin.")
@click.option("--quota", default="0", help="Quota such as 1G or 500M; 0 is unlimited.")
@config_option
@store_command
def mailbox_add(store: Store, address: str, password_stdin: bool, quota: str) -> None:
    """Create the mailbox ADDRESS."""
    quota_bytes = parse_quota(quota)
    password = read_password(password_stdin)
    row = store.add_mailbox(address, password, quota_bytes)
    click.echo(f"created {row.address}")


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def mailbox_list(store: Store, as_json: bool) -> None:
    """List mailboxes with their message counts, sizes and quotas."""
    infos = [store.info(row, with_folders=False) for row in store.index.list_mailboxes()]
    if as_json:
        print_json([i.as_json(with_folders=False) for i in infos])
        return
    for info in infos:
        state = "" if info.enabled else "  (disabled)"
        quota = info.quota or "unlimited"
        click.echo(f"{info.address}  messages={info.messages} bytes={info.bytes} "
                   f"quota={quota}{state}")


@mailbox.command("show")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def mailbox_show(store: Store, address: str, as_json: bool) -> None:
    """Messages, bytes, quota and folders of ADDRESS."""
    info = store.info(store.mailbox(address))
    if as_json:
        print_json(info.as_json())
        return
    click.echo(f"address:  {info.address}")
    click.echo(f"enabled:  {'yes' if info.enabled else 'no'}")
    click.echo(f"messages: {info.messages}")
    click.echo(f"bytes:    {info.bytes}")
    click.echo(f"quota:    {info.quota or 'unlimited'}")
    click.echo(f"folders:  {', '.join(info.folders)}")
    click.echo(f"maildir:  {store.mailbox_dir(info.address)}")


@mailbox.command("passwd")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin.")
@config_option
@store_command
def mailbox_passwd(store: Store, address: str, password_stdin: bool) -> None:
    """Set the password of ADDRESS."""
    store.mailbox(address)
    store.set_password(address, read_password(password_stdin))
    click.echo(f"password changed for {store.canonical(address)}")


@mailbox.command("quota")
@click.argument("address")
@click.argument("size")
@config_option
@store_command
def mailbox_quota(store: Store, address: str, size: str) -> None:
    """Set the quota of ADDRESS (e.g. 1G, 500M; 0 is unlimited)."""
    quota = parse_quota(size)
    store.set_quota(address, quota)
    click.echo(f"quota of {store.canonical(address)} is {quota or 'unlimited'}")


@mailbox.command("disable")
@click.argument("address")
@config_option
@store_command
def mailbox_disable(store: Store, address: str) -> None:
    """Refuse mail (550 5.1.1) and logins for ADDRESS; its messages stay."""
    store.set_enabled(address, False)
    click.echo(f"disabled {store.canonical(address)}")


@mailbox.command("enable")
@click.argument("address")
@config_option
@store_command
def mailbox_enable(store: Store, address: str) -> None:
    """Accept mail and logins for ADDRESS again."""
    store.set_enabled(address, True)
    click.echo(f"enabled {store.canonical(address)}")


@mailbox.command("delete")
@click.argument("address")
@click.option("--purge", is_flag=True, help="Also remove the Maildir and every message in it.")
@config_option
@store_command
def mailbox_delete(store: Store, address: str, purge: bool) -> None:
    """Delete ADDRESS from the index (and its Maildir with --purge)."""
    store.delete_mailbox(address, purge)
    click.echo(f"deleted {store.canonical(address)}{' and its Maildir' if purge else ''}")


@click.group()
@config_option
def alias() -> None:
    """Addresses that deliver to one or more mailboxes."""


@alias.command("add")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("targets", nargs=-1, required=True)
@config_option
@store_command
def alias_add(store: Store, alias_address: str, targets: tuple[str, ...]) -> None:
    """Deliver mail for ALIAS (an address, or @domain for a catch-all) to TARGETS."""
    key, canonical = store.add_alias(alias_address, targets)
    click.echo(f"{key} -> {', '.join(canonical)}")


@alias.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def alias_list(store: Store, as_json: bool) -> None:
    """List aliases and their targets."""
    aliases = store.index.list_aliases()
    if as_json:
        print_json([{"alias": a, "targets": t} for a, t in aliases.items()])
        return
    for name, targets in aliases.items():
        click.echo(f"{name} -> {', '.join(targets)}")


@alias.command("delete")
@click.argument("alias_address", metavar="ALIAS")
@config_option
@store_command
def alias_delete(store: Store, alias_address: str) -> None:
    """Delete ALIAS."""
    store.delete_alias(alias_address)
    click.echo(f"deleted alias {store.canonical_alias(alias_address)}")


COMMANDS = [mailbox, alias]
