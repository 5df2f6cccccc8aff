"""`lmtpd sieve test` and `lmtpd sieve replay`: what a script would do, to one message or to
the mail a mailbox already holds, without storing, sending or remembering anything."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lmtpd.addresses import Verdict
from lmtpd.cli.common import config_option, fail, print_json, store_command
from lmtpd.filtering import SieveRunner
from lmtpd.replay import ReplayedMessage, replay
from lmtpd.scripts import SieveSyntaxError, check_script
from lmtpd.sieve import FileInto, actions_to_json
from lmtpd.store.index import MailboxRow
from lmtpd.store.mailboxes import Store as MailStore

_REFUSALS = {Verdict.INVALID: "not a valid address", Verdict.NOT_LOCAL: "domain is not local",
             Verdict.UNKNOWN: "no such mailbox or alias", Verdict.DISABLED: "mailbox disabled"}


def resolve_mailbox(store: MailStore, address: str) -> MailboxRow:
    """The mailbox delivery would put mail for ADDRESS in: `+detail` and aliases resolved
    as at RCPT. An alias with several targets names none of them."""
    resolution = store.resolve(address)
    if resolution.verdict is not Verdict.OK:
        fail(f"{address}: {_REFUSALS.get(resolution.verdict, resolution.verdict.value)}")
    if len(resolution.mailboxes) != 1:
        targets = ", ".join(m.address for m in resolution.mailboxes)
        fail(f"{address} delivers to {len(resolution.mailboxes)} mailboxes ({targets}); "
             f"name one of them")
    return store.index.require_mailbox(resolution.mailboxes[0].address)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        fail(f"{path}: {error.strerror}")
    raise AssertionError("unreachable")


def _candidate(store: MailStore, path: str, mailbox: MailboxRow) -> str:
    """A script file that compiles, or exit 1 with the line and column of its error."""
    try:
        text = _read(path).decode("utf-8")
        check_script(store.config, text, store.index.personal_scripts(mailbox.id))
    except UnicodeDecodeError:
        fail(f"{path}: a Sieve script must be UTF-8")
    except SieveSyntaxError as error:
        fail(f"{path}: {error}")
    return text


@click.command("test")
@click.argument("address")
@click.argument("message_file", type=click.Path(dir_okay=False))
@click.option("--sender", default="", help="Envelope sender (default: the null sender).")
@click.option("--recipient", default=None, help="Envelope recipient (default: ADDRESS).")
@click.option("--script", "script_file", default=None,
              help="Test this script file instead of the active one.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def sieve_test(store: MailStore, address: str, message_file: str, sender: str,
               recipient: str | None, script_file: str | None, as_json: bool) -> None:
    """Dry run: print the actions delivery to ADDRESS would take for MESSAGE_FILE.

    ADDRESS is resolved as delivery resolves a recipient (alice+lists@ is alice's mailbox,
    an alias its target). Nothing is stored, sent or remembered."""
    mailbox = resolve_mailbox(store, address)
    script = (_candidate(store, script_file, mailbox) if script_file
              else store.index.get_sieve_script(mailbox.id))
    message = _read(message_file).replace(b"\r\n", b"\n")
    result = SieveRunner(store.config).run(
        script, message, sender=sender, recipient=recipient or address,
        mailbox_address=mailbox.address,
        mailbox_exists=lambda folder: store.folder_exists(mailbox, folder),
        personal=store.index.personal_scripts(mailbox.id).get,
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


@click.command("replay")
@click.argument("address")
@click.argument("script_file", type=click.Path(dir_okay=False))
@click.option("--last", default=100, show_default=True, type=click.IntRange(min=1),
              help="How many of the newest stored messages to replay.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@store_command
def sieve_replay(store: MailStore, address: str, script_file: str, last: int,
                 as_json: bool) -> None:
    """What SCRIPT_FILE would have done to the newest stored mail of ADDRESS.

    Each of the last N messages (any folder, newest first) is run through the script with
    the envelope it was delivered with. Nothing is installed, stored, sent or remembered.
    Lists the messages the script would treat differently from where they are now."""
    mailbox = resolve_mailbox(store, address)
    script = _candidate(store, script_file, mailbox)
    total = min(last, store.index.usage(mailbox.id)[0])
    if sys.stderr.isatty() and total:
        with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
            messages = replay(store, mailbox, script, last, progress=bar.update)
    else:
        messages = replay(store, mailbox, script, last)
    changed = [m for m in messages if m.changed]
    if as_json:
        print_json({"messages": [m.as_json() for m in messages], "changed": len(changed)})
        return
    for message in changed:
        click.echo(_line(message))
    click.echo(f"{len(changed)} of {len(messages)} messages would be filed differently")


def _line(message: ReplayedMessage) -> str:
    would = "; ".join(action.describe() for action in message.would) or "nothing"
    subject = message.subject or "(no subject)"
    return f"{message.uidl}  {message.folder} -> {would}  {subject}"

