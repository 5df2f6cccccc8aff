"""lmtpd's socketmap and policy services over real sockets: what each map and the policy
answer, that answers follow account changes at once, many requests per connection, bad
input, a locked index, and Postfix's own socketmap client (postmap -q)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lmtpd, free_port, lmtp_send, require_tool, write_config
from tests.postfix.test_postfix_lookups import hold_exclusive_lock, release


def netstring(text: str) -> bytes:
    data = text.encode()
    return b"%d:%s," % (len(data), data)


class SocketmapClient:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buffer = b""

    def read_reply(self) -> str:
        while True:
            length, colon, rest = self.buffer.partition(b":")
            if colon and len(rest) > int(length):
                assert rest[int(length):int(length) + 1] == b",", self.buffer
                self.buffer = rest[int(length) + 1:]
                return rest[:int(length)].decode()
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed; unread {self.buffer!r}")
            self.buffer += data

    def __call__(self, request: str) -> str:
        self.sock.sendall(netstring(request))
        return self.read_reply()


class PolicyClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def read_action(self) -> str:
        while b"\n\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buffer += data
        reply, self.buffer = self.buffer.split(b"\n\n", 1)
        assert reply.startswith(b"action="), reply
        return reply.decode()[len("action="):]

    def __call__(self, recipient: str, size: int | None = None, state: str = "RCPT",
                 **extra: str) -> str:
        attributes = {"request": "smtpd_access_policy", "protocol_state": state,
                      "protocol_name": "ESMTP", "client_address": "192.0.2.7",
                      "sender": "carol@example.com", "recipient": recipient, **extra}
        if size is not None:
            attributes["size"] = str(size)
        self.sock.sendall("".join(f"{k}={v}\n" for k, v in attributes.items()).encode()
                          + b"\n")
        return self.read_action()


@pytest.fixture
def served(lmtpd_factory: Any) -> Iterator[tuple[Lmtpd, int]]:
    """lmtpd with both lookup services: socketmap on a Unix socket, policy on TCP."""
    policy_port, metrics_port = free_port(), free_port()
    lmtpd = lmtpd_factory({"postfix": {"socketmap": "", "policy": f"127.0.0.1:{policy_port}"},
                           "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
                           "lmtp": {"socket_mode": "0620"}})
    lmtpd.settings["postfix"]["socketmap"] = f"unix:{lmtpd.root / 'socketmap'}"
    write_config(lmtpd.config_path, lmtpd.settings)
    lmtpd.metrics_port = metrics_port  # type: ignore[attr-defined]
    for address in ("alice@example.org", "bob@example.org", "dave@example.org"):
        lmtpd.add_mailbox(address)
    lmtpd.cli("mailbox", "quota", "bob@example.org", "10K")
    lmtpd.cli("mailbox", "disable", "dave@example.org")
    lmtpd.cli("alias", "add", "info@example.org", "alice@example.org", "bob@example.org")
    lmtpd.cli("alias", "add", "team@example.org", "alice@example.org", "dave@example.org")
    lmtpd.cli("alias", "add", "old@example.org", "gone@example.org")
    lmtpd.start()
    yield lmtpd, policy_port


def socketmap_path(lmtpd: Lmtpd) -> str:
    return str(lmtpd.root / "socketmap")


def test_maps_answer_as_rcpt_resolves(served: tuple[Lmtpd, int]) -> None:
    lmtpd, _ = served
    ask = SocketmapClient(socketmap_path(lmtpd))
    assert ask("domain example.org") == "OK example.org"
    assert ask("domain EXAMPLE.Org") == "OK example.org"
    assert ask("domain example.com") == "NOTFOUND "
    assert ask("domain not a domain") == "NOTFOUND "
    alice = "OK mail/example.org/alice/"
    assert (lmtpd.store_root / "mail/example.org/alice/new").is_dir()
    assert ask("mailbox alice@example.org") == alice
    assert ask("mailbox Alice+Lists@EXAMPLE.org") == alice
    assert ask("mailbox info@example.org") == alice  # the first enabled target's
    assert ask("mailbox team@example.org") == alice
    assert ask("mailbox dave@example.org") == "NOTFOUND "  # disabled
    assert ask("mailbox old@example.org") == "NOTFOUND "  # an alias to nothing
    assert ask("mailbox nobody@example.org") == "NOTFOUND "
    assert ask("mailbox alice@example.com") == "NOTFOUND "
    assert ask("mailbox @example.org") == "NOTFOUND "
    assert ask("mailbox ../../etc@example.org") == "NOTFOUND "
    assert ask("alias info@example.org") == "OK alice@example.org,bob@example.org"
    assert ask("alias INFO@example.org") == "OK alice@example.org,bob@example.org"
    assert ask("alias alice@example.org") == "NOTFOUND "
    assert ask("alias nobody@example.org") == "NOTFOUND "
    assert ask("users alice@example.org").startswith("PERM unknown map")
    assert ask("mailbox").startswith("PERM malformed request")
    assert ask("mailbox bob@example.org") == "OK mail/example.org/bob/"  # still in step


def test_catch_all_keeps_existing_mailboxes_in_the_alias_map(
        served: tuple[Lmtpd, int]) -> None:
    # Postfix tries @domain after a key it did not find; lmtpd delivers a mailbox's own
    # mail to it, so the alias map names the mailbox itself once a catch-all exists.
    lmtpd, _ = served
    ask = SocketmapClient(socketmap_path(lmtpd))
    lmtpd.cli("alias", "add", "@example.org", "bob@example.org")
    assert ask("alias @example.org") == "OK bob@example.org"
    assert ask("alias alice@example.org") == "OK alice@example.org"
    assert ask("alias alice+x@example.org") == "NOTFOUND "  # Postfix goes on to alice@
    assert ask("alias info@example.org") == "OK alice@example.org,bob@example.org"
    assert ask("mailbox anyone@example.org") == "OK mail/example.org/bob/"


def test_answers_follow_account_changes_at_once(served: tuple[Lmtpd, int]) -> None:
    lmtpd, port = served
    ask = SocketmapClient(socketmap_path(lmtpd))
    policy = PolicyClient(port)
    assert ask("mailbox erin@example.org") == "NOTFOUND "
    assert policy("erin@example.org").startswith("550 5.1.1")
    lmtpd.add_mailbox("erin@example.org")
    # The same kept connections, the very next request.
    assert ask("mailbox erin@example.org") == "OK mail/example.org/erin/"
    assert policy("erin@example.org") == "DUNNO"
    lmtpd.cli("alias", "add", "sales@example.org", "erin@example.org")
    assert ask("alias sales@example.org") == "OK erin@example.org"
    lmtpd.cli("mailbox", "disable", "erin@example.org")
    assert ask("mailbox sales@example.org") == "NOTFOUND "
    assert policy("sales@example.org") == "550 5.1.1 <sales@example.org>: user unknown"
    lmtpd.cli("alias", "delete", "sales@example.org")
    assert ask("alias sales@example.org") == "NOTFOUND "


def test_policy_refuses_what_delivery_cannot_take(served: tuple[Lmtpd, int]) -> None:
    lmtpd, port = served
    policy = PolicyClient(port)
    assert policy("alice@example.org") == "DUNNO"
    assert policy("alice+lists@example.org", size=10**9) == "DUNNO"  # no quota
    assert policy("nobody@example.org") == "550 5.1.1 <nobody@example.org>: user unknown"
    assert policy("dave@example.org") == "550 5.1.1 <dave@example.org>: user unknown"
    # An alias with a disabled target, or one naming no mailbox: that copy would be lost.
    assert policy("team@example.org") == "550 5.1.1 <team@example.org>: user unknown"
    assert policy("old@example.org") == "550 5.1.1 <old@example.org>: user unknown"
    assert policy("bad address@example.org").startswith("550 5.1.1")
    assert policy("someone@example.com") == "DUNNO"  # not ours
    assert policy("bad address@example.com") == "DUNNO"
    assert policy("", state="RCPT") == "DUNNO"
    assert policy("nobody@example.org", state="DATA") == "DUNNO"
    assert policy("nobody@example.org", request="something_else") == "DUNNO"

    # bob's quota is 10K: the size of the message counts, and through the alias too.
    assert policy("bob@example.org", size=9000) == "DUNNO"
    assert policy("bob@example.org", size=11000) == "552 5.2.2 <bob@example.org>: mailbox full"
    assert policy("info@example.org", size=11000) == (
        "552 5.2.2 <info@example.org>: mailbox full")
    body = b"Subject: fill\n\n" + (b"y" * 99 + b"\n") * 60
    assert lmtp_send(lmtpd.socket_path, "c@example.com", ["bob@example.org"],
                     body)["bob@example.org"][0] == 250
    assert policy("bob@example.org", size=3000) == "DUNNO"
    assert policy("bob@example.org", size=5000).startswith("552 5.2.2")
    lmtpd.cli("mailbox", "quota", "bob@example.org", "5K")
    assert policy("bob@example.org").startswith("552 5.2.2")  # at or over quota: full


def test_many_requests_pipelined_on_one_connection(served: tuple[Lmtpd, int]) -> None:
    lmtpd, port = served
    ask = SocketmapClient(socketmap_path(lmtpd))
    keys = ["alice@example.org", "nobody@example.org", "info@example.org"] * 200
    ask.sock.sendall(b"".join(netstring(f"mailbox {key}") for key in keys))
    replies = [ask.read_reply() for _ in keys]
    expected = {"alice@example.org": "OK mail/example.org/alice/",
                "nobody@example.org": "NOTFOUND ",
                "info@example.org": "OK mail/example.org/alice/"}
    assert replies == [expected[key] for key in keys]

    policy = PolicyClient(port)
    one = ("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient={}\n\n")
    rcpts = ["alice@example.org", "nobody@example.org"] * 100
    policy.sock.sendall("".join(one.format(r) for r in rcpts).encode())
    actions = [policy.read_action() for _ in rcpts]
    assert actions == ["DUNNO" if r.startswith("alice") else
                       "550 5.1.1 <nobody@example.org>: user unknown" for r in rcpts]


def test_garbage_gets_perm_and_the_connection_is_closed(served: tuple[Lmtpd, int]) -> None:
    lmtpd, port = served
    ask = SocketmapClient(socketmap_path(lmtpd))
    ask.sock.sendall(netstring("domain example.org") + b"GET / HTTP/1.0\r\n\r\n")
    assert ask.read_reply() == "OK example.org"
    assert ask.read_reply().startswith("PERM malformed request: not a netstring")
    assert ask.sock.recv(100) == b""  # closed
    too_big = SocketmapClient(socketmap_path(lmtpd))
    too_big.sock.sendall(b"99999999:")
    assert too_big.read_reply().startswith("PERM malformed request")

    policy = PolicyClient(port)
    policy.sock.sendall(b"this is no attribute\n\n")
    assert policy.read_action() == "DEFER_IF_PERMIT Malformed policy request"
    policy.sock.sendall(b"protocol_state=RCPT\nrecipient=nobody@example.org\n\n")
    assert policy.read_action() == "DEFER_IF_PERMIT Malformed policy request"
    assert policy("nobody@example.org").startswith("550 5.1.1")  # the connection goes on
    assert "policy-malformed" in lmtpd.log() and "socketmap-malformed" in lmtpd.log()


def test_unix_socket_has_the_lmtp_socket_mode(served: tuple[Lmtpd, int]) -> None:
    lmtpd, _ = served
    mode = os.stat(socketmap_path(lmtpd)).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o620
    assert f"socketmap=unix:{socketmap_path(lmtpd)}" in lmtpd.log()
    lmtpd.stop()
    assert not Path(socketmap_path(lmtpd)).exists()


def test_lookups_are_counted(served: tuple[Lmtpd, int]) -> None:
    lmtpd, port = served
    SocketmapClient(socketmap_path(lmtpd))("mailbox nobody@example.org")
    PolicyClient(port)("nobody@example.org")
    url = f"http://127.0.0.1:{lmtpd.metrics_port}/metrics"  # type: ignore[attr-defined]
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    assert 'lmtpd_socketmap_lookups_total{map="mailbox",result="NOTFOUND"} 1.0' in text, text
    assert 'lmtpd_policy_requests_total{action="550"} 1.0' in text, text


def test_locked_index_gives_temp_and_defer_never_a_refusal(lmtpd_factory: Any) -> None:
    port = free_port()
    lmtpd = lmtpd_factory({"postfix": {"policy": f"127.0.0.1:{port}"}})
    lmtpd.settings["postfix"]["socketmap"] = f"unix:{lmtpd.root / 'socketmap'}"
    write_config(lmtpd.config_path, lmtpd.settings)
    lmtpd.add_mailbox("alice@example.org")
    holder = hold_exclusive_lock(lmtpd.index_path)
    try:
        lmtpd.start()
        ask = SocketmapClient(socketmap_path(lmtpd))
        policy = PolicyClient(port)
        for key in ("alice@example.org", "nobody@example.org"):
            assert ask(f"mailbox {key}") == "TEMP index unavailable, try again later"
            assert ask(f"alias {key}") == "TEMP index unavailable, try again later"
            assert policy(key) == "DEFER_IF_PERMIT Service temporarily unavailable"
        assert ask("domain example.org") == "OK example.org"  # needs no index
    finally:
        release(holder)
    assert ask("mailbox alice@example.org") == "OK mail/example.org/alice/"
    assert ask("mailbox nobody@example.org") == "NOTFOUND "
    assert policy("nobody@example.org").startswith("550 5.1.1")
    assert "socketmap-deferred" in lmtpd.log() and "policy-deferred" in lmtpd.log()


def test_postfix_socketmap_client(served: tuple[Lmtpd, int], tmp_path: Path) -> None:
    """Postfix's own client (postmap -q) over a kept connection."""
    lmtpd, _ = served
    postmap = require_tool("postmap")
    config = tmp_path / "postfix-etc"
    config.mkdir()
    (config / "main.cf").write_text(f"queue_directory = {tmp_path}\n")
    table = f"socketmap:unix:{socketmap_path(lmtpd)}:mailbox"
    keys = "alice@example.org\nnobody@example.org\ninfo@example.org\n"
    result = subprocess.run([postmap, "-q", "-", table], input=keys, capture_output=True,
                            text=True, env={**os.environ, "MAIL_CONFIG": str(config)},
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["alice@example.org\tmail/example.org/alice/",
                                          "info@example.org\tmail/example.org/alice/"]
    missing = subprocess.run([postmap, "-q", "nobody@example.org", table],
                             capture_output=True, text=True, timeout=30,
                             env={**os.environ, "MAIL_CONFIG": str(config)})
    assert missing.returncode == 1 and not missing.stdout, missing
