"""`lmtpd import dovecot`: take over Dovecot's users, passwords, Maildirs and POP3 UIDLs."""

from __future__ import annotations

from pathlib import Path

import click

from lmtpd.cli.common import EXIT_FAILED, config_option, open_store
from lmtpd.migrate import dovecot
from lmtpd.migrate.uidlist import DEFAULT_UIDL_FORMAT
from lmtpd.privileges import give_index_to_service_user


@click.group("import")
@config_option
def import_group() -> None:
    """Import mailboxes and mail from another server."""


@import_group.command("dovecot")
@click.option("--passwd-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Dovecot passwd-file (user:{SCHEME}hash:uid:gid::home::extra).")
@click.option("--maildir-root", type=click.Path(file_okay=False, path_type=Path),
              help="Directory holding <domain>/<user>[/Maildir].")
@click.option("--layout", metavar="TEMPLATE",
              help="Maildir path per user, e.g. '%d/%n/Maildir', '%Ld/%Ln' or '~/Maildir' "
              "(default: try %d/%n/Maildir, then %d/%n).")
@click.option("--copy/--adopt", "copy", default=True,
              help="Copy the message files (default), or move them into the store.")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing.")
@click.option("--update", is_flag=True,
              help="Also import into mailboxes that exist already (new messages only).")
@click.option("--domain", help="Domain for bare user names (and, with --no-domain-from-user, "
              "for every user).")
@click.option("--domain-from-user/--no-domain-from-user", default=True,
              help="Keep each user@domain's own domain (default), or put everyone in --domain.")
@click.option("--default-scheme", default="CRYPT", show_default=True,
              help="Scheme of hashes without a {SCHEME} prefix (the passdb's scheme=).")
@click.option("--uidl-format", default=DEFAULT_UIDL_FORMAT, show_default=True,
              help="Dovecot's pop3_uidl_format (%u, %v, %f, %g).")
@config_option
def import_dovecot(passwd_file: Path, maildir_root: Path | None, layout: str | None, copy: bool,
                   dry_run: bool, update: bool, domain: str | None, domain_from_user: bool,
                   default_scheme: str, uidl_format: str) -> None:
    """Create the mailboxes of a Dovecot passwd-file with their password hashes, import their
    Maildirs (INBOX and Maildir++ folders) and keep every POP3 UIDL from dovecot-uidlist.

    Run it with --dry-run first. Mailboxes that exist already are skipped, so running it
    twice imports nothing twice."""
    if not domain_from_user and not domain:
        raise click.UsageError("--no-domain-from-user needs --domain")
    options = dovecot.Options(
        passwd_file=passwd_file, maildir_root=maildir_root, layout=layout, adopt=not copy,
        update=update, domain=domain.lower() if domain else None,
        domain_from_user=domain_from_user, default_scheme=default_scheme,
        uidl_format=uidl_format)
    # As root: the old store's files may be readable by root only. What the import makes
    # is handed to the service user as it is made.
    with open_store(as_service_user=False) as store:
        plans = dovecot.plan(store, options)
        for user in plans:
            click.echo(("would " if dry_run else "") + dovecot.describe(user),
                       err=user.refused)
            for note in user.notes:
                click.echo(f"  {user.address}: {note}")
        to_do = [u for u in plans if u.action != "skip"]
        refused = sum(u.refused for u in plans)
        if dry_run:
            click.echo(f"dry run: would import {len(to_do)} mailboxes, "
                       f"{sum(len(u.messages) for u in to_do)} messages, "
                       f"{sum(u.bytes for u in to_do)} bytes; "
                       f"{len(plans) - len(to_do)} skipped ({refused} refused); nothing changed")
        else:
            total = sum(len(u.messages) for u in to_do)
            with click.progressbar(length=total, label="importing", show_pos=True,
                                   file=click.get_text_stream("stderr")) as bar:
                summary = dovecot.execute(store, plans, options, progress=bar.update,
                                          report=lambda line: click.echo(f"\n{line}", err=True))
            give_index_to_service_user(store.config)
            refused = summary.refused
            click.echo(f"imported {summary.mailboxes} mailboxes"
                       f"{f' (+{summary.updated} updated)' if summary.updated else ''}, "
                       f"{summary.messages} messages, {summary.bytes} bytes; skipped "
                       f"{summary.skipped} mailboxes ({summary.refused} refused), "
                       f"{summary.present} messages already there")
    if refused:
        click.echo(f"lmtpd: {refused} users not imported; see above", err=True)
        raise SystemExit(EXIT_FAILED)


COMMANDS = [import_group]
