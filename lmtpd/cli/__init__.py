"""The `lmtpd` command: click groups that parse, call the store and servers, and print.
The commands live in one module per group; what they share is in lmtpd.cli.common."""

from __future__ import annotations

import click

from lmtpd.cli import accounts, maintenance, migrate, observe, serving, sieve
from lmtpd.cli.common import State, remember_config

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", expose_value=False, is_eager=True,
              callback=remember_config, help="Configuration file.")
@click.version_option(package_name="lmtpd")
@click.pass_context
def main(ctx: click.Context) -> None:
    """lmtpd: LMTP delivery agent, Maildir + SQLite store and POP3 server."""
    ctx.ensure_object(State)


for _module in (accounts, maintenance, migrate, observe, serving, sieve):
    for _command in _module.COMMANDS:
        main.add_command(_command)
