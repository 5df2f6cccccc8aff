"""`lmtpd stats`, `lmtpd trace` and the Prometheus endpoint, against a running server."""

from __future__ import annotations

import json
import poplib
import re
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Lmtpd, free_port, lmtp_send


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    label_part = r"\{" + re.escape(wanted) + r"\}" if wanted else ""
    pattern = re.escape(name) + label_part + r" (\S+)$"
    match = re.search("(?m)^" + pattern, text)
    return float(match.group(1)) if match else 0.0


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def test_trace_follows_a_message_per_recipient(lmtpd: Lmtpd, tmp_path: Path) -> None:
    script = tmp_path / "bob.sieve"
    script.write_text('require ["fileinto", "imap4flags"];\n'
                      'fileinto :flags "\\\\Seen" "Archive";\n')
    lmtpd.cli("sieve", "set", "bob@example.org", str(script))
    message = b"Message-ID: <trace-1@remote.example>\r\nSubject: t\r\n\r\nbody\r\n"
    lmtp_send(lmtpd.socket_path, "s@remote.example",
              ["alice@example.org", "bob@example.org", "ghost@example.org"], message)
    out = json.loads(lmtpd.cli("trace", "trace-1@remote.example", "--json").stdout)
    by_rcpt = {row["recipient"]: row for row in out}
    assert by_rcpt["ghost@example.org"]["outcome"] == "rejected"
    assert by_rcpt["ghost@example.org"]["status"] == "5.1.1"
    assert by_rcpt["ghost@example.org"]["stage"] == "rcpt"
    alice = by_rcpt["alice@example.org"]
    assert (alice["outcome"], alice["code"], alice["status"]) == ("delivered", 250, "2.0.0")
    [alice_file] = alice["files"]
    assert alice_file.startswith("alice@example.org INBOX new/")
    assert (lmtpd.maildir("alice@example.org") / alice_file.split()[2]).exists()
    bob = by_rcpt["bob@example.org"]
    assert bob["actions"] == ["store Archive \\Seen"]
    assert bob["files"][0].startswith("bob@example.org Archive cur/")
    text = lmtpd.cli("trace", "<trace-1@remote.example>").stdout
    assert "rcpt=<bob@example.org> delivered 250 2.0.0" in text
    assert "sieve: store Archive \\Seen" in text
    missing = lmtpd.cli("trace", "nothing@here", check=False)
    assert missing.returncode == 1


def test_stats_counts_mailboxes_and_deliveries(lmtpd: Lmtpd) -> None:
    for i in range(3):
        lmtp_send(lmtpd.socket_path, "s@remote.example",
                  ["alice@example.org", "nobody@example.org"],
                  f"Message-ID: <st{i}@x>\r\n\r\nbody {i}\r\n".encode())
    data = json.loads(lmtpd.cli("stats", "--json").stdout)
    alice = next(m for m in data["mailboxes"] if m["address"] == "alice@example.org")
    assert alice["messages"] == 3 and alice["bytes"] > 0
    assert data["deliveries"] == {"delivered": 3, "rejected": 3}
    assert data["deliveries_24h"] == data["deliveries"]
    text = lmtpd.cli("stats").stdout
    assert "alice@example.org" in text and "delivered=3" in text


@pytest.fixture
def metered(lmtpd_factory) -> tuple[Lmtpd, int]:
    port = free_port()
    lmtpd = lmtpd_factory({"metrics": {"listen": f"127.0.0.1:{port}"}})
    lmtpd.add_mailbox("alice@example.org")
    lmtpd.start()
    return lmtpd, port


def test_prometheus_counters_move(metered) -> None:
    lmtpd, port = metered
    before = scrape(port)
    lmtp_send(lmtpd.socket_path, "s@remote.example", ["alice@example.org", "nobody@example.org"],
              b"Subject: m\r\n\r\nbody\r\n")
    client = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    client.user("alice@example.org")
    client.pass_("secret")
    client.quit()
    bad = poplib.POP3("127.0.0.1", lmtpd.pop3_port, timeout=10)
    bad.user("alice@example.org")
    with pytest.raises(poplib.error_proto):
        bad.pass_("wrong")
    bad.quit()
    after = scrape(port)
    for name, labels in [
        ("lmtpd_deliveries_total", {"outcome": "delivered", "status": "2.0.0"}),
        ("lmtpd_deliveries_total", {"outcome": "rejected", "status": "5.1.1"}),
        ("lmtpd_pop3_sessions_total", {}),
        ("lmtpd_pop3_login_failures_total", {"reason": "password"}),
        ("lmtpd_delivery_seconds_count", {}),
    ]:
        assert metric(after, name, **labels) == metric(before, name, **labels) + 1, name
    assert metric(after, "lmtpd_pop3_sessions_active") == 0
