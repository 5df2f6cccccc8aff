"""Dropping root: `lmtpd serve` started as root binds its sockets, then becomes the configured
user and group before it touches the store; the store commands run by root do the same, so
every file in the store is made by, and belongs to, the service user."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from lmtpd.config import Config


class PrivilegeError(Exception):
    pass


def service_ids(config: Config) -> tuple[int, int] | None:
    """(uid, gid) lmtpd will run as after dropping root, or None when it stays as it is."""
    if os.geteuid() != 0 or not config.user:
        return None
    try:
        account = pwd.getpwnam(config.user)
    except KeyError:
        raise PrivilegeError(f"user: no such user {config.user!r}") from None
    gid = account.pw_gid
    if config.group:
        try:
            gid = grp.getgrnam(config.group).gr_gid
        except KeyError:
            raise PrivilegeError(f"group: no such group {config.group!r}") from None
    return account.pw_uid, gid


def drop_privileges(config: Config) -> None:
    """Become `config.user` (and `config.group`, or the user's primary group). A no-op when not
    root or when no user is configured; refuses to go on as root if the switch fails."""
    ids = service_ids(config)
    if ids is None:
        return
    uid, gid = ids
    root = config.store.root
    if not root.exists():
        # Made here by root: the service user makes everything below it, so everything in
        # the store is created with the right owner and no tree ever needs a chown walk.
        root.mkdir(parents=True, mode=0o750)
        os.chown(root, uid, gid)
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise PrivilegeError("could not drop root privileges")


def give_index_to_service_user(config: Config) -> None:
    """After a command that ran as root: the index files it created belong to the service
    user, who must be able to write them."""
    ids = service_ids(config)
    if ids is None:
        return
    index = config.store.index_path
    for suffix in ("", "-wal", "-shm", "-writer", "-accounts"):
        path = Path(f"{index}{suffix}")
        try:
            if path.lstat().st_uid == 0:
                os.lchown(path, *ids)
        except FileNotFoundError:
            continue


def store_root_warning(root: Path) -> str | None:
    """A store that users other than the service user can write to invites hard-link and
    symlink tricks: say so."""
    try:
        mode = root.stat().st_mode
    except OSError:
        return None
    if mode & 0o022:
        return (f"{root} is writable by its group or by everyone (mode {mode & 0o777:04o}); "
                f"make it writable by the service user only (chmod go-w)")
    return None
