"""Started as root with `user = ...`, lmtpd binds, then serves as that user."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Lmtpd, lmtp_send

SERVICE_USER = "lmtpd-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")


@pytest.fixture
def service_user() -> str:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", SERVICE_USER], check=True)
    return SERVICE_USER


@pytest.fixture
def open_dir() -> Iterator[Path]:
    # pytest's tmp_path is private to root (0700): the service user could not reach it.
    path = Path(tempfile.mkdtemp(prefix="lmtpd-priv-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_serves_as_the_configured_user(service_user: str, open_dir: Path) -> None:
    lmtpd = Lmtpd(open_dir, {"user": service_user, "group": service_user,
                             "lmtp": {"socket": str(open_dir / "run" / "lmtp.sock"),
                                      "socket_mode": "0660"}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    try:
        assert lmtpd.process is not None
        status = Path(f"/proc/{lmtpd.process.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        account = pwd.getpwnam(service_user)
        assert uid_line.split()[1:] == [str(account.pw_uid)] * 4
        sock = os.stat(lmtpd.socket_path)
        assert stat.S_IMODE(sock.st_mode) == 0o660
        assert sock.st_gid == account.pw_gid
        result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                           b"Subject: priv\r\n\r\nx\r\n")
        assert result["alice@example.org"][0] == 250
        [path] = (lmtpd.maildir("alice@example.org") / "new").iterdir()
        assert path.stat().st_uid == account.pw_uid
    finally:
        assert lmtpd.stop() == 0
    assert not os.path.exists(lmtpd.socket_path)


def test_store_files_belong_to_the_service_user_without_a_chown_walk(
        service_user: str, open_dir: Path) -> None:
    """Commands run as root act as the service user, so what they make is the user's; serve
    never walks the store changing owners (a root chown walk in a tree the service user can
    write is the classic hard-link hazard)."""
    lmtpd = Lmtpd(open_dir, {"user": service_user, "group": service_user,
                             "lmtp": {"socket": str(open_dir / "run" / "lmtp.sock")}})
    lmtpd.add_mailbox("alice@example.org")  # as root
    account = pwd.getpwnam(service_user)
    made = [lmtpd.store_root, lmtpd.index_path, lmtpd.maildir("alice@example.org"),
            lmtpd.maildir("alice@example.org") / "new"]
    assert [p.stat().st_uid for p in made] == [account.pw_uid] * len(made)
    planted = lmtpd.maildir("alice@example.org") / "root-owned"
    planted.write_text("x")
    os.chown(planted, 0, 0)
    lmtpd.start()
    try:
        result = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                           b"Subject: own\r\n\r\nx\r\n")
        assert result["alice@example.org"][0] == 250
        assert planted.stat().st_uid == 0
    finally:
        assert lmtpd.stop() == 0
