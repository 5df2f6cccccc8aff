"""POP3 fixtures: a self-signed certificate, a running lmtpd with plain, STLS and POP3S
listeners, and client helpers."""

from __future__ import annotations

import base64
import poplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lmtpd import config
from lmtpd.store.mailboxes import Store
from tests.conftest import Lmtpd, free_port, require_tool

PASSWORD = "secret"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    openssl = require_tool("openssl")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


def tls_overrides(tls_files: tuple[str, str], **pop3: Any) -> dict[str, Any]:
    cert, key = tls_files
    return {"pop3": {"tls_cert": cert, "tls_key": key,
                     "tls_listen": [f"127.0.0.1:{free_port()}"], **pop3}}


def pop3s_port(instance: Lmtpd) -> int:
    return int(instance.settings["pop3"]["tls_listen"][0].rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def tls_lmtpd(tmp_path_factory: pytest.TempPathFactory,
              tls_files: tuple[str, str]) -> Iterator[Lmtpd]:
    """One server for a whole module: alice@ and bob@example.org, plain+STLS and POP3S."""
    root = tmp_path_factory.mktemp("pop3")
    instance = Lmtpd(root, tls_overrides(tls_files))
    add_mailboxes(instance, "alice@example.org", "bob@example.org")
    instance.start()
    yield instance
    instance.stop()


def add_mailboxes(instance: Lmtpd, *addresses: str) -> None:
    """Create mailboxes in-process (much faster than one `lmtpd mailbox add` each)."""
    store = Store(config.load(instance.config_path))
    try:
        for address in addresses:
            store.add_mailbox(address, PASSWORD)
    finally:
        store.close()


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def connect(instance: Lmtpd, mode: str = "plain", host: str = "127.0.0.1",
            port: int | None = None) -> poplib.POP3:
    """A poplib client: "plain", "stls" (upgraded) or "pop3s" (implicit TLS)."""
    if mode == "pop3s":
        return poplib.POP3_SSL(host, port or pop3s_port(instance), context=client_context(),
                               timeout=10)
    client = poplib.POP3(host, port or instance.pop3_port, timeout=10)
    if mode == "stls":
        client.stls(client_context())
    return client


def auth_plain(client: poplib.POP3, user: str, password: str = PASSWORD, *,
               initial: bool = True) -> bytes:
    """SASL PLAIN (RFC 5034), with or without the initial response; poplib has no helper."""
    blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    if initial:
        return client._shortcmd(f"AUTH PLAIN {blob}")
    client._putcmd("AUTH PLAIN")
    line, _ = client._getline()
    assert line.startswith(b"+"), line
    return client._shortcmd(blob)


def login(instance: Lmtpd, user: str = "alice@example.org", mode: str = "plain") -> poplib.POP3:
    client = connect(instance, mode)
    client.user(user)
    client.pass_(PASSWORD)
    return client


class RawClient:
    """A line-level client on a plain socket, for what poplib hides (raw bytes, pipelining)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def command(self, text: str) -> bytes:
        self.send(text.encode() + b"\r\n")
        return self.line()

    def multiline(self) -> bytes:
        """The raw transfer after a +OK line, up to and including the terminating dot."""
        chunks = []
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("connection closed in a multi-line response")
            chunks.append(line)
            if line == b".\r\n":
                return b"".join(chunks)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def retr_bytes(client: poplib.POP3, number: int) -> tuple[bytes, int]:
    """RETR as the message bytes a client gets (CRLF line ends, unstuffed) and poplib's
    octet count."""
    _, lines, octets = client.retr(number)
    return b"".join(line + b"\r\n" for line in lines), octets


def message_files(instance: Lmtpd, address: str) -> list[Path]:
    base = instance.maildir(address)
    return sorted(p for sub in ("new", "cur") for p in (base / sub).iterdir())
