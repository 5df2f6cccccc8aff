"""A private Dovecot for the tests that compare with it or migrate from it: started in the
foreground on a generated configuration, in a session of its own, and stopped with all its
children."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import require_tool, require_user, wait_for


def service_ids() -> tuple[int, int, str, str]:
    """(uid, gid, internal user, login user) a private Dovecot runs mail and its services as:
    the package's users as root, ourselves otherwise."""
    if os.geteuid() != 0:
        name = pwd.getpwuid(os.getuid()).pw_name
        return os.getuid(), os.getgid(), name, name
    entry = require_user("dovecot", "dovecot-core")
    require_user("dovenull", "dovecot-core")
    return entry.pw_uid, entry.pw_gid, "dovecot", "dovenull"


def base_settings(root: Path, internal_user: str, login_user: str) -> list[str]:
    """The lines every private Dovecot's configuration starts with: its state under `root`,
    loopback only, plaintext logins without TLS, and the users it runs as."""
    return [
        f"base_dir = {root / 'run'}",
        f"state_dir = {root / 'state'}",
        "listen = 127.0.0.1",
        "ssl = no",
        "auth_mechanisms = plain",
        "disable_plaintext_auth = no",
        f"default_internal_user = {internal_user}",
        f"default_login_user = {login_user}",
        "first_valid_uid = 1",
        "first_valid_gid = 1",
        f"log_path = {root / 'dovecot.log'}",
    ]


def connectable(address: str | tuple[str, int]) -> bool:
    """Whether something accepts connections at a Unix socket path or (host, port)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


def start(conf: Path, ready: Callable[[], bool], log: Callable[[], str] = str
          ) -> subprocess.Popen[bytes]:
    """`dovecot -F -c CONF`, returned once `ready()` holds; AssertionError with Dovecot's
    own words if it ends or does not get ready within 30 s."""
    process = subprocess.Popen([require_tool("dovecot"), "-F", "-c", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    up = wait_for(lambda: process.poll() is not None or ready(), timeout=30)
    if not up or process.poll() is not None:
        error = process.stderr.read().decode() if process.stderr else ""
        stop(process)
        raise AssertionError(f"dovecot did not start: {error}\n{log()}")
    return process


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL to the whole session after 20 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
