"""A private Dovecot for side-by-side benchmarks: generated config under a temporary directory,
Maildir, passwd-file users, LMTP on a Unix socket and POP3 on a free loopback port.

Nothing outside the temporary directory is touched; the system Dovecot (if any) keeps running.
"""

from __future__ import annotations

import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"


def available() -> bool:
    return bool(shutil.which("dovecot") or os.access(DOVECOT, os.X_OK)) and os.access(
        "/usr/lib/dovecot/lmtp", os.X_OK)


def version() -> str:
    try:
        out = subprocess.run([shutil.which("dovecot") or DOVECOT, "--version"],
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    return out.stdout.strip() or "unknown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_ids() -> tuple[int, int, str]:
    """The uid/gid mail is stored as: the `dovecot` package user (exists wherever the packages
    are installed); as non-root, ourselves."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name
    entry = pwd.getpwnam("dovecot")
    return entry.pw_uid, entry.pw_gid, entry.pw_name


class Dovecot:
    """`with Dovecot(tmp) as dc: dc.add_users([...]); dc.start()` ..."""

    def __init__(self, root: Path, password: str = "secret") -> None:
        self.root = root
        self.password = password
        self.base_dir = root / "run"
        self.mail_root = root / "mail"
        self.socket_path = self.base_dir / "lmtp.sock"
        self.pop3_port = free_port()
        self.conf = root / "dovecot.conf"
        self.passwd = root / "passwd"
        self.uid, self.gid, self.user = _service_ids()
        self.process: subprocess.Popen[bytes] | None = None
        self._users: list[str] = []
        self._stamp = 0

    # -- configuration ---------------------------------------------------------------------

    def write_config(self) -> None:
        # The auth and mail processes run as the service users and must reach these files.
        os.chmod(self.root, 0o755)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.mail_root.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail_root, self.uid, self.gid)
        as_root = os.geteuid() == 0
        internal = "dovecot" if as_root else self.user
        login = "dovenull" if as_root else self.user
        lines = [
            f"base_dir = {self.base_dir}",
            f"state_dir = {self.root / 'state'}",
            "protocols = lmtp pop3",
            "listen = 127.0.0.1",
            "ssl = no",
            "auth_mechanisms = plain",
            "disable_plaintext_auth = no",
            f"default_internal_user = {internal}",
            f"default_login_user = {login}",
            f"mail_uid = {self.uid}",
            f"mail_gid = {self.gid}",
            "first_valid_uid = 1",
            "first_valid_gid = 1",
            f"mail_location = maildir:{self.mail_root}/%d/%n",
            "mail_fsync = optimized",
            # Both sides log nothing per message, so logging is not what gets measured.
            f"log_path = {self.root / 'dovecot.log'}",
            "info_log_path = /dev/null",
            "lmtp_save_to_detail_mailbox = no",
            "recipient_delimiter = +",
            "pop3_uidl_format = %f",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {self.passwd}",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = username_format=%u {self.passwd}",
            "}",
            "service lmtp {",
            "  unix_listener lmtp.sock {",
            "    mode = 0666",
            "  }",
            "}",
            "service pop3-login {",
            "  inet_listener pop3 {",
            "    address = 127.0.0.1",
            f"    port = {self.pop3_port}",
            "  }",
            "  inet_listener pop3s {",
            "    port = 0",
            "  }",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    port = 0",
            "  }",
            "  inet_listener imaps {",
            "    port = 0",
            "  }",
            "}",
            "service anvil {",
            "  chroot =",
            "}",
            "service stats {",
            "  unix_listener stats-reader {",
            "    mode = 0666",
            "  }",
            "  unix_listener stats-writer {",
            "    mode = 0666",
            "  }",
            "}",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self._write_passwd()

    def add_users(self, addresses: Iterable[str]) -> None:
        self._users.extend(a.lower() for a in addresses)
        if self.conf.exists():
            # passwd-file is re-read when it changes, so users can be added while running.
            self._write_passwd()

    def _write_passwd(self) -> None:
        rows = [
            f"{a}:{{PLAIN}}{self.password}:{self.uid}:{self.gid}::"
            f"{self.mail_root / a.split('@')[1] / a.split('@')[0]}::"
            for a in self._users
        ]
        tmp = self.passwd.with_suffix(".tmp")
        tmp.write_text("\n".join(rows) + ("\n" if rows else ""))
        os.chmod(tmp, 0o644)
        # Dovecot re-reads passwd-file when its mtime (whole seconds) or size changes; two
        # updates within one second with equally long names would go unnoticed otherwise.
        self._stamp = max(self._stamp + 1, int(time.time()))
        os.utime(tmp, (self._stamp, self._stamp))
        os.replace(tmp, self.passwd)

    def maildir(self, address: str) -> Path:
        local, domain = address.lower().split("@")
        return self.mail_root / domain / local

    # -- process ---------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        if not self.conf.exists():
            self.write_config()
        self.process = subprocess.Popen(
            [shutil.which("dovecot") or DOVECOT, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"dovecot exited {self.process.returncode}: {err}"
                                   f"\n{self.log_tail()}")
            if connectable_unix(self.socket_path) and connectable_tcp(self.pop3_port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not become ready\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        path = self.root / "dovecot.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def pids(self, name: str) -> list[int]:
        """Pids of the running Dovecot children whose command is `name` (e.g. "lmtp")."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0]
                with open(f"/proc/{entry}/status") as handle:
                    ppid = next(int(x.split()[1]) for x in handle if x.startswith("PPid:"))
            except (OSError, StopIteration, ValueError):
                continue
            if self.process and ppid == self.process.pid and cmd.endswith(name.encode()):
                found.append(int(entry))
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> Dovecot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connectable_unix(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def connectable_tcp(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True


def machine() -> str:
    """The machine a benchmark ran on, for the figures' caption."""
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return "?"
    mem = sh("free -h | awk '/^Mem:/ {print $2}'")
    return (f"nproc {os.cpu_count()}, RAM {mem}, kernel {platform.release()}, "
            f"Python {platform.python_version()}, Dovecot {version()}")


def parse_ints(text: str) -> list[int]:
    """`"1,4,16"` -> [1, 4, 16] (command-line lists)."""
    return [int(x) for x in text.split(",") if x]


def parse_sizes(text: str) -> list[int]:
    """`"2k,100k"` -> [2048, 102400] (command-line body sizes)."""
    result = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            factor = 1024 if part.endswith("k") else 1
            result.append(int(part.rstrip("k")) * factor)
    return result


def lmtpd_config(root: Path, domain: str, *, fsync: bool, lmtp: str = "", pop3: str = "",
                 rest: str = "", log_level: str = "warning") -> str:
    """A bench's lmtpd configuration: store, LMTP socket and POP3 under `root`, the one local
    `domain`, by default only warnings logged. `lmtp` and `pop3` are more lines of those
    sections (POP3 has no listener unless `pop3` names one); `rest` is further sections."""
    return (f'hostname = "bench.{domain}"\n'
            f'[store]\nroot = "{root / "store"}"\nfsync = {"true" if fsync else "false"}\n'
            f'[domains]\nlocal = ["{domain}"]\n'
            f'[lmtp]\nsocket = "{root / "lmtp.sock"}"\n{lmtp}'
            f'[pop3]\n{pop3 or "listen = []"}\n'
            f'[log]\nlevel = "{log_level}"\n' + rest)


def start_lmtpd(config_path: Path, log_path: Path, ready: Callable[[], bool],
                timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """`python -m lmtpd serve` from this checkout (PYTHONPATH, so an unusual venv state does
    not matter), its stderr appended to `log_path`; returns once `ready()` holds."""
    repo = Path(__file__).resolve().parent.parent
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lmtpd", "--config", str(config_path), "serve"],
            stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(repo), *filter(None, [os.environ.get("PYTHONPATH")])])},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lmtpd exited {process.returncode}: "
                               + log_path.read_text(errors="replace"))
        if ready():
            return process
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError("lmtpd did not become ready")


def stop_lmtpd(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (lmtpd drains and stops its workers), SIGKILL after 30 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
