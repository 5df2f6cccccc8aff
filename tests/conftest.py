"""Shared fixtures: a real `lmtpd serve` process on a temporary store, its CLI, and an LMTP
client that reads one reply per recipient (smtplib.LMTP alone reads only the first)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
LMTPD = str(BIN / "lmtpd")
IN_CI = os.environ.get("CI", "").lower() == "true"


# The Debian package each program the tests run comes from, named when it is missing.
PACKAGE_OF = {
    "postfix": "postfix", "postqueue": "postfix", "postmap": "postfix",
    "smtp-source": "postfix", "postconf": "postfix",
    "dovecot": "dovecot-core", "doveadm": "dovecot-core",
    "/usr/lib/dovecot/pop3": "dovecot-pop3d", "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
    "/usr/lib/dovecot/managesieve": "dovecot-managesieved", "sieve-test": "dovecot-sieve",
    "fetchmail": "fetchmail", "getmail": "getmail6", "sieve-connect": "sieve-connect",
    "openssl": "openssl", "systemd-analyze": "systemd",
}


def require_tool(name: str) -> str:
    """The path of an external program that can be run here; skipped locally when missing
    (naming its package), a failure in CI."""
    path = shutil.which(name) or next(
        (p for p in (name, f"/usr/sbin/{name}", f"/usr/bin/{name}",
                     f"/usr/lib/postfix/sbin/{name}")
         if os.path.isabs(p) and os.access(p, os.X_OK)), None)
    if path:
        return path
    package = PACKAGE_OF.get(name, name)
    if IN_CI:
        pytest.fail(f"{name} ({package}) is not installed; .ci/run must install {package}")
    pytest.skip(f"{name} is not installed (package {package})")


def require_user(name: str, package: str) -> pwd.struct_passwd:
    """A system user a package creates; skipped locally when missing, a failure in CI."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        if IN_CI:
            pytest.fail(f"user {name} is missing; .ci/run must install {package}")
        pytest.skip(f"user {name} is missing ({package} is not installed)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    lines = []
    sections = {k: v for k, v in settings.items() if isinstance(v, dict)}
    for key, value in settings.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {toml_value(value)}")
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = value
    return result


class Lmtpd:
    """A configured lmtpd: its config file, its CLI, and (once started) its server process."""

    def __init__(self, root: Path, overrides: dict[str, Any] | None = None) -> None:
        self.root = root
        self.pop3_port = free_port()
        settings = {
            "hostname": "mail.example.org",
            "store": {"root": str(root / "store"), "fsync": True},
            "domains": {"local": ["example.org", "example.net", "localhost"]},
            "lmtp": {"socket": str(root / "lmtp.sock"), "timeout": 600},
            "pop3": {"listen": [f"127.0.0.1:{self.pop3_port}"], "login_failure_delay": 1.0},
        }
        self.settings = deep_merge(settings, overrides or {})
        self.config_path = write_config(root / "lmtpd.toml", self.settings)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_lines: list[str] = []
        self._ready = threading.Event()

    @property
    def socket_path(self) -> str:
        return str(self.settings["lmtp"]["socket"])

    @property
    def store_root(self) -> Path:
        return Path(self.settings["store"]["root"])

    @property
    def index_path(self) -> Path:
        return self.store_root / "index.sqlite3"

    def maildir(self, address: str) -> Path:
        local, domain = address.lower().split("@")
        return self.store_root / "mail" / domain / local

    def cli(self, *args: str, input: str | bytes | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        data = input.decode() if isinstance(input, bytes) else input
        result = subprocess.run(
            [LMTPD, "--config", str(self.config_path), *args], input=data,
            capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"lmtpd {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def add_mailbox(self, address: str, password: str = "secret", quota: str = "0") -> None:
        self.cli("mailbox", "add", address, "--password-stdin", "--quota", quota,
                 input=password + "\n")

    def start(self, env: dict[str, str] | None = None, timeout: float = 20.0) -> None:
        self._ready.clear()
        self.process = subprocess.Popen(
            [LMTPD, "--config", str(self.config_path), "serve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        threading.Thread(target=self._read_log, args=(self.process,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise AssertionError("lmtpd did not become ready:\n" + "\n".join(self.log_lines))

    def _read_log(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log_lines.append(line)
            if "lmtpd ready" in line:
                self._ready.set()

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log(self) -> str:
        return "\n".join(self.log_lines)


@pytest.fixture
def lmtpd_factory(tmp_path: Path) -> Iterator[Any]:
    """Make lmtpd instances with config overrides; all are stopped at the end."""
    made: list[Lmtpd] = []

    def make(overrides: dict[str, Any] | None = None, name: str = "lmtpd") -> Lmtpd:
        root = tmp_path / name
        root.mkdir()
        instance = Lmtpd(root, overrides)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.stop()


@pytest.fixture
def lmtpd(lmtpd_factory: Any) -> Lmtpd:
    """A running lmtpd with mailboxes alice@ and bob@example.org (password "secret")."""
    instance = lmtpd_factory()
    instance.add_mailbox("alice@example.org")
    instance.add_mailbox("bob@example.org")
    instance.start()
    return instance


class LmtpResult(dict[str, tuple[int, str]]):
    """Replies by recipient: the RCPT reply for refused ones, the final one for accepted."""


def to_wire(message: bytes) -> bytes:
    """CRLF line ends, transparency dots, and a final CRLF (RFC 5321 §4.5.2)."""
    payload = re.sub(rb"\r?\n", b"\r\n", message)
    payload = re.sub(rb"(?m)^\.", b"..", payload)
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload


def lmtp_send(target: str | tuple[str, int], sender: str, recipients: list[str],
              message: bytes, client: smtplib.LMTP | None = None) -> LmtpResult:
    """One LMTP transaction; reads one final reply per accepted recipient."""
    own = client is None
    if client is None:
        client = smtplib.LMTP(target) if isinstance(target, str) else smtplib.LMTP(*target)
    try:
        client.ehlo_or_helo_if_needed()
        code, text = client.mail(sender)
        assert code == 250, (code, text)
        result = LmtpResult()
        accepted = []
        for rcpt in recipients:
            code, text = client.rcpt(rcpt)
            if code == 250:
                accepted.append(rcpt)
            else:
                result[rcpt] = (code, text.decode())
        if not accepted:
            client.rset()
            return result
        code, text = client.docmd("DATA")
        assert code == 354, (code, text)
        client.send(to_wire(message) + b".\r\n")
        for rcpt in accepted:
            code, text = client.getreply()
            result[rcpt] = (code, text.decode())
        return result
    finally:
        if own:
            client.quit()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class RawLmtp:
    """An LMTP client on a plain Unix socket that sends bytes exactly as given (smtplib
    refuses some of what these tests must send) and reads whole replies."""

    def __init__(self, path: str, timeout: float = 30) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> bytes:
        """One reply; of a multi-line one, all its lines."""
        lines = []
        while True:
            line = self.file.readline()
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)

    def command(self, line: str | bytes) -> bytes:
        data = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")
        return self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.file.close()
        self.sock.close()
