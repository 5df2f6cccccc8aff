"""What every `lmtpd` command shares: the configuration option, the store, errors and exit
statuses, JSON output.

Exit status: 0 success, 1 a failed operation (unknown mailbox, duplicate address), 2 bad usage
or configuration.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from lmtpd import config as config_module
from lmtpd.addresses import AddressError
from lmtpd.config import Config, ConfigError
from lmtpd.privileges import PrivilegeError, drop_privileges
from lmtpd.store.index import IndexFailure
from lmtpd.store.mailboxes import Store, StoreError
from lmtpd.store.maildir import FolderError

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED = 1
EXIT_USAGE = 2


class State:
    def __init__(self) -> None:
        self.config_path: str | None = None
        self._config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = config_module.load(self.config_path)
            except ConfigError as error:
                click.echo(f"lmtpd: {error}", err=True)
                sys.exit(EXIT_USAGE)
        return self._config


def remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(State).config_path = value


def config_option(fn: F) -> F:
    """`--config` accepted after the subcommand too (`lmtpd mailbox list --config F`)."""
    return click.option(
        "--config", "config_path", metavar="PATH", expose_value=False, is_eager=True,
        callback=remember_config, help="Configuration file (default: $LMTPD_CONFIG, "
        "/etc/lmtpd/lmtpd.toml, then the embedded defaults under ./var).",
    )(fn)


def fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"lmtpd: {message}", err=True)
    sys.exit(code)


@contextmanager
def open_store(durable: bool = True, *, as_service_user: bool = True) -> Iterator[Store]:
    """The store, for a command. Run as root with `user` set, the command acts as the
    service user (so what it makes in the store is theirs), unless it must read files only
    root can (an import)."""
    state = click.get_current_context().ensure_object(State)
    config = state.config()
    if as_service_user:
        try:
            drop_privileges(config)
        except (PrivilegeError, OSError) as error:
            fail(str(error))
    try:
        store = Store(config, durable_index=durable)
    except OSError as error:
        fail(f"cannot open the store: {error}")
    try:
        yield store
    except (AddressError, FolderError, StoreError, IndexFailure) as error:
        fail(str(error))
    finally:
        store.close()


def store_command(fn: F) -> F:
    """Give a command an open Store as its first argument and map store errors to exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with open_store() as store:
            return fn(store, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
