"""The installed `lmtpd` command: mailbox, alias, deliver, check-config, serve lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LMTPD, Lmtpd, lmtp_send, wait_for


@pytest.fixture
def idle(lmtpd_factory) -> Lmtpd:
    """A configured but not running lmtpd."""
    return lmtpd_factory()


def test_mailbox_lifecycle_with_json(idle: Lmtpd) -> None:
    idle.add_mailbox("Carol@Example.ORG", quota="10M")
    assert (idle.maildir("carol@example.org") / "new").is_dir()
    listed = json.loads(idle.cli("mailbox", "list", "--json").stdout)
    assert listed == [{"address": "carol@example.org", "enabled": True, "messages": 0,
                       "bytes": 0, "quota": 10 * 1024 * 1024}]
    shown = json.loads(idle.cli("mailbox", "show", "carol@example.org", "--json").stdout)
    assert shown["folders"] == ["INBOX"] and shown["quota"] == 10485760
    idle.cli("mailbox", "quota", "carol@example.org", "0")
    idle.cli("mailbox", "disable", "carol@example.org")
    shown = json.loads(idle.cli("mailbox", "show", "carol@example.org", "--json").stdout)
    assert shown["enabled"] is False and shown["quota"] == 0
    idle.cli("mailbox", "enable", "carol@example.org")
    idle.cli("mailbox", "passwd", "carol@example.org", "--password-stdin", input="new-pw\n")
    idle.cli("mailbox", "delete", "carol@example.org", "--purge")
    assert not idle.maildir("carol@example.org").exists()
    assert json.loads(idle.cli("mailbox", "list", "--json").stdout) == []


def test_duplicate_and_unknown_mailbox_exit_1(idle: Lmtpd) -> None:
    idle.add_mailbox("dave@example.org")
    again = idle.cli("mailbox", "add", "dave@example.org", "--password-stdin", input="x\n",
                     check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    missing = idle.cli("mailbox", "show", "nobody@example.org", check=False)
    assert missing.returncode == 1 and "no such mailbox" in missing.stderr


@pytest.mark.parametrize("address", [
    "../etc@example.org", "a/b@example.org", "@example.org",
    "user@", "user@../../etc", "us..er@example.org", ".user@example.org", "a\tb@example.org",
    "user@exa_mple.org", "user@example.org/..",
])
def test_addresses_that_could_escape_the_store_are_refused(idle: Lmtpd, address: str) -> None:
    result = idle.cli("mailbox", "add", address, "--password-stdin", input="pw\n", check=False)
    assert result.returncode == 1, result.stderr
    assert "lmtpd:" in result.stderr
    assert not any(Path(idle.store_root).glob("**/etc*"))


def test_password_is_hashed_never_echoed(idle: Lmtpd) -> None:
    result = idle.cli("mailbox", "add", "erin@example.org", "--password-stdin",
                      input="hunter2-secret\n")
    assert "hunter2" not in result.stdout + result.stderr
    index = idle.index_path.read_bytes()
    assert b"hunter2-secret" not in index
    assert b"$argon2id$" in index


def test_aliases_with_json(idle: Lmtpd) -> None:
    idle.add_mailbox("a@example.org")
    idle.add_mailbox("b@example.org")
    idle.cli("alias", "add", "team@example.org", "a@example.org", "b@example.org")
    idle.cli("alias", "add", "@example.net", "a@example.org")
    listed = json.loads(idle.cli("alias", "list", "--json").stdout)
    assert {"alias": "team@example.org", "targets": ["a@example.org", "b@example.org"]} in listed
    assert {"alias": "@example.net", "targets": ["a@example.org"]} in listed
    idle.cli("alias", "delete", "team@example.org")
    assert idle.cli("alias", "delete", "team@example.org", check=False).returncode == 1


def test_catch_all_alias_delivers(idle: Lmtpd) -> None:
    idle.add_mailbox("a@example.org")
    idle.cli("alias", "add", "@example.net", "a@example.org")
    idle.start()
    result = lmtp_send(idle.socket_path, "s@x.example", ["anything@example.net"],
                       b"Subject: catch\r\n\r\nall\r\n")
    assert result["anything@example.net"][0] == 250
    assert len(list((idle.maildir("a@example.org") / "new").iterdir())) == 1


def test_deliver_command_exit_codes(idle: Lmtpd) -> None:
    idle.add_mailbox("frank@example.org")
    msg = "Subject: lda\n\nhello from deliver\n"
    ok = idle.cli("deliver", "--sender", "s@x.example", "frank@example.org", input=msg)
    assert ok.returncode == 0
    [path] = (idle.maildir("frank@example.org") / "new").iterdir()
    assert path.read_bytes().endswith(b"Subject: lda\n\nhello from deliver\n")
    assert b"Return-Path: <s@x.example>" in path.read_bytes()
    unknown = idle.cli("deliver", "ghost@example.org", input=msg, check=False)
    assert unknown.returncode == 67
    faults = idle.root / "faults"
    faults.write_text("fsync EIO\n")
    temp = idle.cli("deliver", "frank@example.org", input="Subject: t\n\nx\n", check=False,
                    env={"LMTPD_FAULTS_FILE": str(faults)})
    assert temp.returncode == 75, temp.stderr


def test_check_config_prints_effective_configuration(idle: Lmtpd) -> None:
    result = idle.cli("check-config")
    assert 'hostname = "mail.example.org"' in result.stdout
    assert "max_message_size = 52428800" in result.stdout


@pytest.mark.parametrize(("text", "key"), [
    ('[lmtp]\nmax_message_size = "lots"\n', "lmtp.max_message_size"),
    ("[lmtp]\nunknown_key = 1\n", "lmtp.unknown_key"),
    ("[pop3]\nlisten = ['nowhere']\n", "pop3.listen"),
    ("[store]\nfsync = 'maybe'\n", "store.fsync"),
    ("not toml at all [", "not valid TOML"),
])
def test_invalid_config_exits_2_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run([LMTPD, "--config", str(path), "check-config"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert key in result.stderr
    # --config is accepted after the subcommand too, and $LMTPD_CONFIG is honoured.
    after = subprocess.run([LMTPD, "mailbox", "list", "--config", str(path)],
                           capture_output=True, text=True)
    assert after.returncode == 2 and key in after.stderr
    env = subprocess.run([LMTPD, "check-config"], capture_output=True, text=True,
                         env={**os.environ, "LMTPD_CONFIG": str(path)})
    assert env.returncode == 2 and key in env.stderr


def test_sizes_accept_units(tmp_path: Path) -> None:
    path = tmp_path / "sizes.toml"
    path.write_text('[lmtp]\nmax_message_size = "512K"\nduplicate_window = "2h"\n')
    result = subprocess.run([LMTPD, "--config", str(path), "check-config"],
                            capture_output=True, text=True, check=True)
    assert "max_message_size = 524288" in result.stdout
    assert "duplicate_window = 7200" in result.stdout


def test_embedded_defaults_live_under_var(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LMTPD_CONFIG"}
    result = subprocess.run([LMTPD, "check-config"], capture_output=True, text=True, cwd=tmp_path,
                            env=env, check=True)
    assert 'root = "var"' in result.stdout
    assert 'socket = "var/run/lmtp.sock"' in result.stdout


def test_socket_mode_and_stale_socket_replaced(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory({"lmtp": {"socket_mode": "0600"}})
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(lmtpd.socket_path)  # a socket file nobody listens on
    stale.close()
    lmtpd.start()
    assert oct(os.stat(lmtpd.socket_path).st_mode & 0o777) == "0o600"
    # A second server on the same socket is refused and leaves the first one working.
    second = subprocess.run([LMTPD, "--config", str(lmtpd.config_path), "serve"],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert "in use" in second.stderr
    assert lmtp_send(lmtpd.socket_path, "s@x.example", ["x@elsewhere.example"],
                     b"x\r\n")["x@elsewhere.example"][0] == 550


def test_sigterm_finishes_and_removes_socket(lmtpd: Lmtpd) -> None:
    assert lmtpd.process is not None
    process = lmtpd.process
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not os.path.exists(lmtpd.socket_path)
    assert "lmtpd stopped" in lmtpd.log()


def test_sighup_reloads_configuration(lmtpd: Lmtpd) -> None:
    refused = lmtp_send(lmtpd.socket_path, "s@x.example", ["someone@example.com"], b"x\r\n")
    assert refused["someone@example.com"][0] == 550
    text = lmtpd.config_path.read_text().replace(
        'local = ["example.org", "example.net", "localhost"]',
        'local = ["example.org", "example.net", "localhost", "example.com"]')
    lmtpd.config_path.write_text(text)
    lmtpd.add_mailbox("someone@example.com")
    assert lmtpd.process is not None
    lmtpd.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in lmtpd.log())
    accepted = lmtp_send(lmtpd.socket_path, "s@x.example", ["someone@example.com"],
                         b"Subject: r\r\n\r\nx\r\n")
    assert accepted["someone@example.com"][0] == 250


def test_python_m_lmtpd_is_the_same_program(idle: Lmtpd) -> None:
    python = Path(LMTPD).parent / "python"
    result = subprocess.run([str(python), "-m", "lmtpd", "--config", str(idle.config_path),
                             "check-config"], capture_output=True, text=True, check=True)
    assert "mail.example.org" in result.stdout


def test_contrib_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "contrib" / "lmtpd.toml"
    result = subprocess.run([LMTPD, "--config", str(example), "check-config"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'socket = "/run/lmtpd/lmtp.sock"' in result.stdout
