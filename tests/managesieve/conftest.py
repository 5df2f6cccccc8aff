"""ManageSieve fixtures: a certificate for localhost, a running lmtpd with a ManageSieve
listener, and a line-level client for what the real clients hide."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lmtpd, free_port, require_tool

# The ManageSieve tests log in with the POP3 tests' password and make mailboxes the same way.
from tests.pop3.conftest import PASSWORD, add_mailboxes  # noqa: F401


@pytest.fixture(scope="session")
def localhost_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate valid for localhost and 127.0.0.1 (clients that verify
    trust it through SSL_CERT_FILE)."""
    openssl = require_tool("openssl")
    directory = tmp_path_factory.mktemp("managesieve-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def sieve_overrides(cert: tuple[str, str] | None = None, **section: Any) -> dict[str, Any]:
    managesieve: dict[str, Any] = {"listen": [f"127.0.0.1:{free_port()}"], **section}
    if cert is not None:
        managesieve.update(tls_cert=cert[0], tls_key=cert[1])
    return {"managesieve": managesieve, "store": {"fsync": False}}


def sieve_port(instance: Lmtpd) -> int:
    return int(instance.settings["managesieve"]["listen"][0].rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def sieve_lmtpd(tmp_path_factory: pytest.TempPathFactory,
                localhost_cert: tuple[str, str]) -> Iterator[Lmtpd]:
    """One server for a module, with STARTTLS, at most 5 scripts per mailbox and a 4 KB
    script limit; a fresh mailbox per test keeps the tests apart."""
    instance = Lmtpd(tmp_path_factory.mktemp("managesieve"),
                     {**sieve_overrides(localhost_cert, max_scripts=5),
                      "sieve": {"max_script_size": "4K"},
                      "metrics": {"listen": f"127.0.0.1:{free_port()}"}})
    instance.start()
    yield instance
    instance.stop()


class RawClient:
    """ManageSieve at the line level: send a command, read up to its OK/NO/BYE line."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.response()

    def response(self) -> list[bytes]:
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("connection closed")
            lines.append(line)
            if line.startswith((b"OK", b"NO", b"BYE")):
                if line.rstrip().endswith(b"}"):  # a literal text follows
                    size = int(line.rsplit(b"{", 1)[1].rstrip(b"}\r\n"))
                    lines.append(self.file.read(size) + self.file.readline())
                return lines

    def command(self, data: bytes) -> list[bytes]:
        self.sock.sendall(data)
        return self.response()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def deliveries(instance: Lmtpd, address: str, folder: str = "") -> list[Path]:
    base = instance.maildir(address) / (("." + folder.replace("/", ".")) if folder else "")
    return sorted(p for sub in ("new", "cur") if (base / sub).is_dir()
                  for p in (base / sub).iterdir())
