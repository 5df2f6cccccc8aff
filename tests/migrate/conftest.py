"""Migration fixtures: a private Dovecot (generated config in a temporary directory, passwd-file
users with several password schemes, Maildir, LMTP on a Unix socket, POP3 on a free loopback
port) and helpers to build Dovecot-style Maildirs and passwd-files by hand."""

from __future__ import annotations

import os
import poplib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import dovecot_process
from tests.conftest import free_port, require_tool


def dovecot_hash(scheme: str, password: str) -> str:
    """`{SCHEME}hash` made by Dovecot itself: the oracle for what its passdb holds."""
    doveadm = require_tool("doveadm")
    result = subprocess.run([doveadm, "pw", "-s", scheme, "-p", password],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


@dataclass(frozen=True)
class DovecotUser:
    address: str
    scheme: str
    password: str

    @property
    def local(self) -> str:
        return self.address.split("@")[0]

    @property
    def domain(self) -> str:
        return self.address.split("@")[1]


class Dovecot:
    """A Dovecot of our own; the system one (if any) is not touched."""

    def __init__(self, root: Path, users: list[DovecotUser]) -> None:
        self.root = root
        self.users = users
        self.mail_root = root / "mail"
        self.passwd = root / "passwd"
        self.conf = root / "dovecot.conf"
        self.socket_path = root / "run" / "lmtp.sock"
        self.pop3_port = free_port()
        self.uid, self.gid, self.internal, self.login = dovecot_process.service_ids()
        self.process: subprocess.Popen[bytes] | None = None

    def layout(self) -> str:
        return "%d/%n/Maildir"

    def maildir(self, address: str) -> Path:
        local, domain = address.split("@")
        return self.mail_root / domain / local / "Maildir"

    def write(self) -> None:
        # Dovecot's auth and mail processes run as other users and must reach these files.
        os.chmod(self.root, 0o755)
        (self.root / "run").mkdir(exist_ok=True)
        self.mail_root.mkdir(exist_ok=True)
        os.chown(self.mail_root, self.uid, self.gid)
        rows = []
        for user in self.users:
            home = self.mail_root / user.domain / user.local
            rows.append(f"{user.address}:{dovecot_hash(user.scheme, user.password)}:"
                        f"{self.uid}:{self.gid}::{home}::")
        self.passwd.write_text("\n".join(rows) + "\n")
        os.chmod(self.passwd, 0o644)
        self.conf.write_text("\n".join([
            *dovecot_process.base_settings(self.root, self.internal, self.login),
            "protocols = lmtp pop3",
            f"mail_location = maildir:{self.mail_root}/{self.layout()}",
            # Deliveries to user+Archive land in the folder Archive, created on demand.
            "recipient_delimiter = +",
            "lmtp_save_to_detail_mailbox = yes",
            "lda_mailbox_autocreate = yes",
            # pop3_uidl_format stays at Dovecot's default, %08Xu%08Xv.
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=CRYPT username_format=%u {self.passwd}",
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
        ]) + "\n")

    def start(self) -> None:
        if not self.conf.exists():
            self.write()
        self.process = dovecot_process.start(
            self.conf, lambda: (dovecot_process.connectable(str(self.socket_path))
                                and dovecot_process.connectable(("127.0.0.1", self.pop3_port))),
            self.log)

    def stop(self) -> None:
        process, self.process = self.process, None
        dovecot_process.stop(process)
        # Its children (auth, pop3, lmtp) exit after the master; wait until none holds the
        # Maildirs any more, so the import sees finished files.
        time.sleep(0.2)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pop3(self, user: DovecotUser) -> poplib.POP3:
        client = poplib.POP3("127.0.0.1", self.pop3_port, timeout=20)
        client.user(user.address)
        client.pass_(user.password)
        return client


@pytest.fixture
def dovecot_dir() -> Iterator[Path]:
    """A directory the dovecot user can traverse (pytest's own tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="lmtpd-dovecot-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pop3_listing(client: poplib.POP3) -> tuple[list[str], list[str]]:
    """(UIDL lines, LIST lines) as a client sees them: `<n> <uidl>`, `<n> <octets>`."""
    uidl = [line.decode() for line in client.uidl()[1]]
    listing = [line.decode() for line in client.list()[1]]
    return uidl, listing


def write_maildir_message(folder: Path, name: str, body: bytes, subdir: str = "new") -> Path:
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    path = folder / subdir / name
    path.write_bytes(body)
    return path
