"""Dropping root: `lmtpd serve` started as root binds its sockets, then becomes the configured
user and group before it touches the store."""

from __future__ import annotations

import grp
import os
import pwd

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
    root.mkdir(parents=True, exist_ok=True)
    # The store must belong to the service user; files already there keep their owner only if
    # they are the user's already (a fresh store is made by lmtpd as root before the switch).
    _chown_tree_if_root_owned(root, uid, gid)
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise PrivilegeError("could not drop root privileges")


def _chown_tree_if_root_owned(root: os.PathLike[str], uid: int, gid: int) -> None:
    for directory, dirs, files in os.walk(root):
        for name in [directory, *(os.path.join(directory, n) for n in dirs + files)]:
            stat = os.lstat(name)
            if stat.st_uid == 0:
                os.lchown(name, uid, gid)
