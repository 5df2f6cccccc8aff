"""`lmtpd sieve set|show|delete|test`."""

from __future__ import annotations

from pathlib import Path

import click

from lmtpd.cli import config_option, fail, print_json, store_command
from lmtpd.filtering import SieveRunner
from lmtpd.sieve import FileInto, SieveSyntaxError, actions_to_json
from lmtpd.store.mailboxes import Store as MailStore


@click.group()
@config_option
def sieve() -> None:
    """Per-mailbox Sieve filters (RFC 5228)."""


def _read(path: str) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        fail(f"{path}: {error.strerror}")
    except UnicodeDecodeError:
        fail(f"{path}: a Sieve script must be UTF-8")
    raise AssertionError("unreachable")


@sieve.command("set")
@click.argument("address")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@store_command
def sieve_set(store: MailStore, address: str, file: str) -> None:
    """Validate FILE and make it the Sieve script of ADDRESS.

    A script that does not compile is refused with its line and column, and the script in
    force stays as it was."""
    mailbox = store.mailbox(address)
    text = _read(file)
    try:
        compiled = SieveRunner(store.config).compile(text, uploading=True)
    except SieveSyntaxError as error:
        fail(f"{file}: {error}; the previous script stays in force")
    for warning in compiled.warnings:
        click.echo(f"{file}: warning: {warning}", err=True)
    store.index.set_sieve_script(mailbox.id, text)
    click.echo(f"sieve script of {mailbox.address} set ({len(text.encode())} bytes)")


@sieve.command("show")
@click.argument("address")
@config_option
@store_command
def sieve_show(store: MailStore, address: str) -> None:
    """Print the Sieve script of ADDRESS."""
    mailbox = store.mailbox(address)
    text = store.index.get_sieve_script(mailbox.id)
    if text is None:
        fail(f"{mailbox.address} has no sieve script")
    click.echo(text, nl=not text.endswith("\n"))


@sieve.command("delete")
@click.argument("address")
@config_option
@store_command
def sieve_delete(store: MailStore, address: str) -> None:
    """Remove the Sieve script of ADDRESS (mail is then kept in INBOX)."""
    mailbox = store.mailbox(address)
    if not store.index.delete_sieve_script(mailbox.id):
        fail(f"{mailbox.address} has no sieve script")
    click.echo(f"sieve script of {mailbox.address} deleted")


@sieve.command("test")
@click.argument("address")
@click.argument("message_file", type=click.Path(dir_okay=False))
@click.option("--sender", default="", help="Envelope sender (default: the null sender).")
@click.option("--recipient", default=None, help="Envelope recipient (default: ADDRESS).")
@click.option("--script", "script_file", default=None,
              help="Test this script file instead of the stored one.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def sieve_test(store: MailStore, address: str, message_file: str, sender: str,
               recipient: str | None, script_file: str | None, as_json: bool) -> None:
    """Dry run: print the actions delivery would take for MESSAGE_FILE; store nothing."""
    mailbox = store.mailbox(address)
    script = _read(script_file) if script_file else store.index.get_sieve_script(mailbox.id)
    try:
        message = Path(message_file).read_bytes().replace(b"\r\n", b"\n")
    except OSError as error:
        fail(f"{message_file}: {error.strerror}")
    runner = SieveRunner(store.config)
    if script_file:
        try:
            runner.compile(script or "")
        except SieveSyntaxError as error:
            fail(f"{script_file}: {error}")
    result = runner.run(
        script, message, sender=sender, recipient=recipient or mailbox.address,
        mailbox_address=mailbox.address,
        mailbox_exists=lambda folder: store.folder_exists(mailbox, folder),
    )
    actions = result.actions if result is not None else [FileInto("INBOX")]
    if as_json:
        document = actions_to_json(actions)
        if result is not None and result.errors:
            document["errors"] = result.errors
        print_json(document)
        return
    for action in actions:
        click.echo(action.describe())
    for error in result.errors if result is not None else []:
        click.echo(f"error: {error}", err=True)


COMMANDS = [sieve]
