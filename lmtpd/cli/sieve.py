"""`lmtpd sieve set|list|show|delete|activate`: a mailbox's named Sieve scripts (the same
scripts ManageSieve users see); `test` and `replay` come from lmtpd.cli.sieve_try."""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from lmtpd.cli import sieve_try
from lmtpd.cli.common import config_option, fail, print_json, store_command
from lmtpd.scripts import DEFAULT_NAME, SieveSyntaxError, check_script, script_name_problem
from lmtpd.store.mailboxes import Store as MailStore


@click.group()
@config_option
def sieve() -> None:
    """Per-mailbox Sieve filters (RFC 5228): several named scripts, one of them active."""


sieve.add_command(sieve_try.sieve_test)
sieve.add_command(sieve_try.sieve_replay)


def read_script(path: str) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        fail(f"{path}: {error.strerror}")
    except UnicodeDecodeError:
        fail(f"{path}: a Sieve script must be UTF-8")
    raise AssertionError("unreachable")


def _script_name(_ctx: click.Context, _param: click.Parameter, value: str | None
                 ) -> str | None:
    if value is not None:
        problem = script_name_problem(value)
        if problem:
            raise click.BadParameter(problem)
    return value


@sieve.command("set")
@click.argument("address")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", default=DEFAULT_NAME, show_default=True, callback=_script_name,
              help="Name of the script.")
@config_option
@store_command
def sieve_set(store: MailStore, address: str, file: str, name: str) -> None:
    """Store FILE as the script NAME of ADDRESS and make it the active one.

    A script that does not compile is refused with its line and column, and nothing
    changes. A new name beyond managesieve.max_scripts is refused."""
    mailbox = store.mailbox(address)
    text = read_script(file)
    try:
        warnings = check_script(store.config, text, store.index.personal_scripts(mailbox.id))
    except SieveSyntaxError as error:
        fail(f"{file}: {error}; nothing was changed")
    for warning in warnings:
        click.echo(f"{file}: warning: {warning}", err=True)
    store.index.put_sieve_script(mailbox.id, name, text, activate=True,
                                 max_scripts=store.config.managesieve.max_scripts)
    click.echo(f"sieve script {name} of {mailbox.address} set and active "
               f"({len(text.encode())} bytes)")


@sieve.command("list")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def sieve_list(store: MailStore, address: str, as_json: bool) -> None:
    """The scripts of ADDRESS: name, whether active, size in bytes."""
    mailbox = store.mailbox(address)
    rows = store.index.sieve_scripts(mailbox.id)
    if as_json:
        print_json([{"name": r.name, "active": r.active, "bytes": r.bytes} for r in rows])
        return
    for row in rows:
        updated = datetime.datetime.fromtimestamp(row.updated).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{row.name}  bytes={row.bytes} updated={updated}"
                   f"{'  (active)' if row.active else ''}")


@sieve.command("show")
@click.argument("address")
@click.argument("name", required=False, callback=_script_name)
@config_option
@store_command
def sieve_show(store: MailStore, address: str, name: str | None) -> None:
    """Print the script NAME of ADDRESS (without NAME: the active one)."""
    mailbox = store.mailbox(address)
    row = store.index.sieve_script(mailbox.id, name)
    if row is None:
        fail(f"{mailbox.address} has no sieve script named {name}" if name
             else f"{mailbox.address} has no active sieve script")
        return
    click.echo(row.text, nl=not row.text.endswith("\n"))


@sieve.command("delete")
@click.argument("address")
@click.argument("name", required=False, callback=_script_name)
@config_option
@store_command
def sieve_delete(store: MailStore, address: str, name: str | None) -> None:
    """Remove the script NAME of ADDRESS (without NAME: the active one). With no active
    script, mail is kept in INBOX."""
    mailbox = store.mailbox(address)
    if name is None:
        row = store.index.sieve_script(mailbox.id, None)
        if row is None:
            fail(f"{mailbox.address} has no active sieve script")
            return
        name = row.name
    store.index.delete_sieve_script(mailbox.id, name, allow_active=True)
    click.echo(f"sieve script {name} of {mailbox.address} deleted")


@sieve.command("activate")
@click.argument("address")
@click.argument("name", required=False, callback=_script_name)
@click.option("--none", "no_script", is_flag=True, help="Leave no script active.")
@config_option
@store_command
def sieve_activate(store: MailStore, address: str, name: str | None, no_script: bool) -> None:
    """Make the script NAME of ADDRESS the one delivery runs (--none: no script)."""
    if (name is None) == (not no_script):
        raise click.UsageError("give either NAME or --none")
    mailbox = store.mailbox(address)
    if name is not None:
        row = store.index.sieve_script(mailbox.id, name)
        if row is None:
            fail(f"{mailbox.address} has no sieve script named {name}")
            return
        try:
            check_script(store.config, row.text, store.index.personal_scripts(mailbox.id))
        except SieveSyntaxError as error:
            fail(f"sieve script {name}: {error}; nothing was changed")
    store.index.activate_sieve_script(mailbox.id, name)
    click.echo(f"sieve script {name} of {mailbox.address} is active" if name
               else f"{mailbox.address} has no active sieve script now")


COMMANDS = [sieve]
