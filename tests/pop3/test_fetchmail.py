"""Acceptance 6: fetchmail, a real POP3 client, takes every message over STLS and, without
keep, leaves the mailbox empty."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import lmtp_send, require_tool
from tests.pop3.conftest import add_mailboxes, message_files, tls_overrides

ADDRESS = "fetch@example.org"


def test_fetchmail_retrieves_everything_over_stls(lmtpd_factory: Any, tls_files: tuple[str, str],
                                                  tmp_path: Path) -> None:
    fetchmail = require_tool("fetchmail")
    instance = lmtpd_factory(tls_overrides(tls_files))
    add_mailboxes(instance, ADDRESS)
    instance.start()
    subjects = [f"fetch test {n}" for n in range(5)]
    for n, subject in enumerate(subjects):
        filler = ("z" * 70 + "\n") * (n * 100)
        body = f"Subject: {subject}\n\nline one of {n}\n.dotted line\n{filler}"
        result = lmtp_send(instance.socket_path, "s@example.net", [ADDRESS],
                           body.encode())
        assert result[ADDRESS][0] == 250

    home = tmp_path / "home"
    home.mkdir()
    output = tmp_path / "fetched.mbox"
    rc = home / ".fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 service {instance.pop3_port} protocol pop3 auth password\n'
        f'  user "{ADDRESS}" there with password "secret" is "root" here\n'
        '  sslproto "tls1.2+" no sslcertck\n'
        f'  mda "cat >> {output}"\n'
        '  fetchall no keep\n'
    )
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home)}
    result = subprocess.run(
        [fetchmail, "-f", str(rc), "-N", "--nosyslog", "-v", "--pidfile", str(home / "pid")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "POP3> STLS" in log and "upgrade to TLS succeeded" in log, log
    assert log.count(" flushed") == len(subjects), log
    fetched = output.read_bytes()
    for n, subject in enumerate(subjects):
        assert f"Subject: {subject}".encode() in fetched
        assert b"line one of %d\n.dotted line\n" % n in fetched
    assert not message_files(instance, ADDRESS)
    assert instance.cli("verify").returncode == 0
