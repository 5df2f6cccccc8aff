"""`make run` on the embedded defaults: the README's example, run as written from the same
directory, sends a message that lands in ./var/mail/localhost/demo/new/."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile beside the already installed .venv, in a fresh directory (so ./var is new)."""
    venv = REPO / ".venv"
    if not (venv / ".installed").exists():
        pytest.skip("run through `make test`, which installs .venv first")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(REPO / name, tmp_path / name)
    # The copy must not look newer than the install stamp: make would reinstall from here.
    os.utime(tmp_path / "pyproject.toml", (0, 0))
    (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


def readme_example() -> str:
    """The README's first Python example, verbatim."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^```python\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no ```python block"
    return match.group(1)


def test_make_run_serves_the_demo_mailbox(checkout: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LMTPD_CONFIG", "MAKEFLAGS")}
    process = subprocess.Popen(["make", "-s", "run"], cwd=checkout, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace"))
            if "lmtpd ready" in lines[-1]:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(60), "".join(lines)
        match = re.search(r"lmtp=unix:(\S+)", "".join(lines))
        assert match, "".join(lines)
        socket_path = match.group(1)
        assert socket_path == str(checkout / "var" / "run" / "lmtp.sock")
        # Pasted into python3 in another terminal, in the same directory.
        example = subprocess.run([sys.executable, "-"], input=readme_example(), text=True,
                                 cwd=checkout, capture_output=True, timeout=60)
        assert example.returncode == 0, example.stderr
        new = checkout / "var" / "mail" / "localhost" / "demo" / "new"
        deadline = time.monotonic() + 5
        while not any(new.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        [stored] = list(new.iterdir())
        assert stored.read_bytes().endswith(b"Subject: hi\n\nhello\n")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
