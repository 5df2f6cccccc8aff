"""A private Postfix instance in front of a test lmtpd, configured from contrib/postfix.

The instance has its own config directory, queue directory, data directory and log file, and
listens for SMTP on a free loopback port only, so it never touches the system's Postfix. Its
lmtpd lines (main.cf, master.cf, lmtpd.toml) are read from contrib/postfix and only their paths
are rewritten: what the tests prove is what an operator copies.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "postfix"
MAPS_SCRIPT = CONTRIB / "lmtpd-virtual-maps"
ALTERNATIVE_MARKER = "Non-chrooted alternative"
VARIANTS = ("chroot", "nochroot")

# Paths in the contrib files and what they become in a test instance (see Postfix.paths).
CONTRIB_SOCKET_CHROOT = "/var/spool/postfix/private/lmtpd"
CONTRIB_SOCKET_NOCHROOT = "/run/lmtpd/lmtp.sock"
CONTRIB_MAPS = "/etc/postfix/lmtpd-virtual-mailboxes"

# Everything but lmtp runs unchrooted: a chrooted smtpd or cleanup would need copies of
# /etc files inside the private queue directory, and only the lmtp line is under test.
BASE_MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _main_cf_key(line: str) -> str:
    return line.split("=", 1)[0].strip()


def _master_cf_key(line: str) -> str:
    service, kind = line.split()[:2]
    return f"{service}/{kind}"


def read_snippet(path: Path, variant: str, key: Callable[[str], str]) -> list[tuple[str, str]]:
    """The active lines of a contrib file as (key, line), in order. For the "nochroot" variant
    the commented lines under a "Non-chrooted alternative" comment replace the active lines
    with the same key, exactly as an operator uncommenting them would."""
    active: list[tuple[str, str]] = []
    alternatives: dict[str, str] = {}
    in_alternative = False
    for raw in path.read_text().splitlines():
        line = raw.rstrip()
        if not line.strip():
            in_alternative = False
        elif line.startswith("#"):
            if ALTERNATIVE_MARKER in line:
                in_alternative = True
            elif in_alternative and line[1:2].strip():
                candidate = line[1:]
                # Prose inside the comment block has no key; only settings count.
                with contextlib.suppress(ValueError):
                    alternatives[key(candidate)] = candidate
        elif not line[0].isspace():
            active.append((key(line), line))
    if variant == "nochroot":
        unknown = set(alternatives) - {k for k, _ in active}
        assert not unknown, f"{path}: alternative for a setting that is not there: {unknown}"
        active = [(k, alternatives.get(k, line)) for k, line in active]
    else:
        assert variant == "chroot", variant
    return active


def contrib_main_cf(variant: str) -> dict[str, str]:
    lines = read_snippet(CONTRIB / "main.cf", variant, _main_cf_key)
    return {k: line.split("=", 1)[1].strip() for k, line in lines}


def contrib_master_cf(variant: str) -> list[str]:
    return [line for _, line in read_snippet(CONTRIB / "master.cf", variant, _master_cf_key)]


def contrib_lmtpd_toml(variant: str) -> dict[str, Any]:
    """contrib/postfix/lmtpd.toml as settings, with the variant's socket line."""
    lines = read_snippet(CONTRIB / "lmtpd.toml", variant, _toml_key)
    return tomllib.loads("\n".join(line for _, line in lines))


def _toml_key(line: str) -> str:
    if line.startswith("["):
        return line
    if "=" not in line:
        raise ValueError(line)
    return _main_cf_key(line)


@dataclass
class Postfix:
    """One private Postfix instance: `start()` after lmtpd is listening, `stop()` at the end."""

    variant: str
    maps: bool
    port: int
    tools: dict[str, str]  # postfix, postqueue, postmap: their paths from require_tool
    extra_main_cf: dict[str, str] = field(default_factory=dict)  # a test's own settings
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lmtpd-postfix-")))
    started: bool = False

    def __post_init__(self) -> None:
        # The lmtp client runs as the postfix user and, without chroot, opens the socket by its
        # absolute path: every directory above it must be searchable by that user, which
        # pytest's per-user temp directory (mode 0700) is not.
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "spool"
        self.data_dir = self.root / "lib"
        self.run_dir = self.root / "run"
        self.maillog = self.root / "maillog"
        self.maps_file = self.root / "lmtpd-virtual-mailboxes"
        for directory in (self.config_dir, self.queue_dir, self.data_dir, self.run_dir):
            directory.mkdir()
        shutil.chown(self.data_dir, "postfix")
        # The private/ directory normally comes from `postfix check`; lmtpd needs it first to
        # put its socket there. Postfix's own modes, so `postfix check` stays quiet.
        private = self.queue_dir / "private"
        private.mkdir(mode=0o700)
        shutil.chown(private, "postfix", "root")

    @property
    def paths(self) -> dict[str, str]:
        return {
            CONTRIB_SOCKET_CHROOT: str(self.queue_dir / "private" / "lmtpd"),
            CONTRIB_SOCKET_NOCHROOT: str(self.run_dir / "lmtp.sock"),
            CONTRIB_MAPS: str(self.maps_file),
        }

    def rewrite(self, value: str) -> str:
        for contrib_path, test_path in self.paths.items():
            value = value.replace(contrib_path, test_path)
        return value

    def lmtpd_settings(self) -> dict[str, Any]:
        """lmtpd overrides: the [lmtp] lines of contrib/postfix/lmtpd.toml, socket rewritten."""
        lmtp = dict(contrib_lmtpd_toml(self.variant)["lmtp"])
        lmtp["socket"] = self.rewrite(lmtp["socket"])
        return {"lmtp": lmtp}

    def main_cf(self) -> str:
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.maillog),
            # postlogd writes only under these prefixes; the default is /var and /dev/stdout.
            "maillog_file_prefixes": str(self.root),
            "myhostname": "mx.example.org",
            "mydomain": "example.org",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "smtputf8_enable": "no",
            "biff": "no",
            # Retries within the test's patience; lifetimes stay at their defaults so that a
            # deferred message is never bounced while a test waits for it.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "lmtp_connection_cache_time_limit": "1s",
        }
        for key, value in contrib_main_cf(self.variant).items():
            if key == "virtual_mailbox_maps" and not self.maps:
                continue
            settings[key] = self.rewrite(value)
        settings.update(self.extra_main_cf)
        return "".join(f"{key} = {value}\n" for key, value in settings.items())

    def master_cf(self) -> str:
        smtpd = f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
        return smtpd + BASE_MASTER_CF + "\n".join(contrib_master_cf(self.variant)) + "\n"

    def run(self, *command: str, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MAIL_CONFIG": str(self.config_dir)}
        command = (self.tools.get(command[0], command[0]), *command[1:])
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}\n{self.log()}")
        return result

    def start(self) -> None:
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(self.master_cf())
        # `postfix start` runs `postfix check` (creating the rest of the queue tree with the
        # right owners) and returns once master(8) has opened its listeners.
        self.run("postfix", "-c", str(self.config_dir), "start")
        self.started = True

    def stop(self) -> None:
        if not self.started:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        self.started = False
        self.run("postfix", "-c", str(self.config_dir), "stop", check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.running():
            time.sleep(0.1)
        if self.running():
            # Our own master(8), by the pid it recorded, if it ignored the stop.
            pid = int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
            os.kill(pid, 9)
        shutil.rmtree(self.root, ignore_errors=True)

    def running(self) -> bool:
        status = self.run("postfix", "-c", str(self.config_dir), "status", check=False)
        return status.returncode == 0

    def queue(self) -> str:
        return self.run("postqueue", "-c", str(self.config_dir), "-p").stdout

    def flush(self) -> None:
        self.run("postqueue", "-c", str(self.config_dir), "-f")

    def log(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return "(no maillog)"

    def smtp(self) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        client.ehlo("client.example.com")
        return client

    def send(self, sender: str, recipients: list[str], message: bytes) -> str:
        """Submit over SMTP; the Postfix queue id from the 250 reply to DATA."""
        with self.smtp() as client:
            client.mail(sender)
            for rcpt in recipients:
                code, text = client.rcpt(rcpt)
                assert code == 250, (rcpt, code, text)
            code, text = client.data(message)
            assert code == 250, (code, text)
        match = re.search(rb"queued as ([0-9A-Za-z]+)", text)
        assert match, text
        return match.group(1).decode()
