"""A private Dovecot ManageSieve server (managesieved) for side-by-side transcripts:
generated configuration in a temporary directory, one passwd-file user, scripts under its
home. The system Dovecot, if any, is not touched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests import dovecot_process
from tests.conftest import free_port, require_tool

MANAGESIEVE = "/usr/lib/dovecot/managesieve"


class ManageSieved:
    def __init__(self, root: Path, user: str, password: str, *, max_scripts: int,
                 max_script_size: int) -> None:
        self.root = root
        self.port = free_port()
        self.uid, self.gid, self.internal, self.login = dovecot_process.service_ids()
        self.settings = {"user": user, "password": password, "max_scripts": max_scripts,
                         "max_script_size": max_script_size}
        self.process: subprocess.Popen[bytes] | None = None

    def write(self) -> Path:
        os.chmod(self.root, 0o755)
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        os.chown(home, self.uid, self.gid)
        (self.root / "run").mkdir(exist_ok=True)
        s = self.settings
        passwd = self.root / "passwd"
        passwd.write_text(f"{s['user']}:{{PLAIN}}{s['password']}:{self.uid}:{self.gid}::"
                          f"{home}::\n")
        os.chmod(passwd, 0o644)
        conf = self.root / "dovecot.conf"
        conf.write_text("\n".join([
            *dovecot_process.base_settings(self.root, self.internal, self.login),
            "protocols = sieve",
            "mail_location = maildir:~/Maildir",
            "passdb {", "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {passwd}", "}",
            "userdb {", "  driver = passwd-file", f"  args = username_format=%u {passwd}", "}",
            "service managesieve-login {", "  inet_listener sieve {",
            "    address = 127.0.0.1", f"    port = {self.port}", "  }", "}",
            "service anvil {", "  chroot =", "}",
            "service stats {", "  unix_listener stats-reader {", "    mode = 0666", "  }",
            "  unix_listener stats-writer {", "    mode = 0666", "  }", "}",
            "plugin {", "  sieve = file:~/sieve;active=~/.dovecot.sieve",
            f"  sieve_quota_max_scripts = {s['max_scripts']}",
            f"  sieve_max_script_size = {s['max_script_size']}", "}",
        ]) + "\n")
        return conf

    def start(self) -> None:
        require_tool("dovecot")
        require_tool(MANAGESIEVE)
        self.process = dovecot_process.start(
            self.write(), lambda: dovecot_process.connectable(("127.0.0.1", self.port)))

    def stop(self) -> None:
        process, self.process = self.process, None
        dovecot_process.stop(process)
