"""Store failures answer 451 4.3.0 for that recipient, leave nothing half-written, and the next
delivery works."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Lmtpd, lmtp_send

MESSAGE = b"Subject: failure test\r\nMessage-ID: <f1@remote.example>\r\n\r\nbody\r\n"


def all_files(lmtpd: Lmtpd, address: str) -> list[Path]:
    base = lmtpd.maildir(address)
    return [p for sub in ("tmp", "new", "cur") for p in (base / sub).iterdir()]


@pytest.fixture
def faulty(lmtpd_factory, tmp_path: Path) -> tuple[Lmtpd, Path]:
    faults = tmp_path / "faults"
    faults.write_text("")
    lmtpd = lmtpd_factory()
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.add_mailbox("bob@example.org")
    lmtpd.start(env={"LMTPD_FAULTS_FILE": str(faults)})
    return lmtpd, faults


@pytest.mark.parametrize("fault", ["fsync EIO", "write ENOSPC", "index EIO"])
def test_injected_failure_gives_451_and_leaves_nothing(faulty, fault: str) -> None:
    lmtpd, faults = faulty
    faults.write_text(fault + "\n")
    result = lmtp_send(lmtpd.socket_path, "s@remote.example",
                       ["alice@example.org", "bob@example.org"], MESSAGE)
    assert result["alice@example.org"][0] == 451
    assert result["alice@example.org"][1].startswith("4.3.0")
    assert result["bob@example.org"][0] == 451
    assert all_files(lmtpd, "alice@example.org") == []
    assert all_files(lmtpd, "bob@example.org") == []
    assert lmtpd.cli("verify").returncode == 0

    # Recovery: the retry of the same message is stored (a failed delivery left no
    # duplicate-suppression mark behind).
    faults.write_text("")
    result = lmtp_send(lmtpd.socket_path, "s@remote.example",
                       ["alice@example.org", "bob@example.org"], MESSAGE)
    assert result["alice@example.org"][0] == 250
    assert result["bob@example.org"][0] == 250
    assert len(all_files(lmtpd, "alice@example.org")) == 1
    assert lmtpd.cli("verify").returncode == 0


def test_failure_of_one_recipient_does_not_touch_another(faulty) -> None:
    lmtpd, faults = faulty
    # Only the first write fails: make alice's Maildir unwritable instead of a global fault.
    tmp_dir = lmtpd.maildir("alice@example.org") / "tmp"
    if os.geteuid() == 0:
        shutil.rmtree(tmp_dir)
        tmp_dir.write_text("not a directory")
    else:
        tmp_dir.chmod(0o500)
    result = lmtp_send(lmtpd.socket_path, "s@remote.example",
                       ["alice@example.org", "bob@example.org"], MESSAGE)
    assert result["alice@example.org"][0] == 451
    assert result["bob@example.org"][0] == 250
    del faults


def _can_mount_tmpfs() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root to mount a small tmpfs")
def test_real_disk_full_on_a_small_tmpfs(lmtpd_factory, tmp_path: Path) -> None:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        lmtpd = lmtpd_factory({"store": {"root": str(mount_point / "store")}})
        lmtpd.add_mailbox("alice@example.org")
        lmtpd.add_mailbox("bob@example.org")
        lmtpd.start()
        rcpts = ["alice@example.org", "bob@example.org"]
        # 1.5 MB: spooled (over 1 MB) and then written once per recipient: the disk fills.
        big = b"Subject: big\r\n\r\n" + (b"b" * 998 + b"\r\n") * 1500
        result = lmtp_send(lmtpd.socket_path, "s@remote.example", rcpts, big)
        assert [result[r][0] for r in rcpts] == [451, 451]
        assert all(result[r][1].startswith("4.3.0") for r in rcpts)
        assert all_files(lmtpd, "alice@example.org") == []
        assert all_files(lmtpd, "bob@example.org") == []
        # Bigger than the disk: the spool itself fails; still one reply per recipient.
        huge = b"Subject: huge\r\n\r\n" + (b"h" * 998 + b"\r\n") * 3000
        result = lmtp_send(lmtpd.socket_path, "s@remote.example", rcpts, huge)
        assert [result[r][0] for r in rcpts] == [451, 451]
        small = lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org"],
                          b"Subject: small\r\n\r\nfits\r\n")
        assert small["alice@example.org"][0] == 250
        assert lmtpd.cli("verify").returncode == 0
        lmtpd.stop()
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
