"""systemd/lmtpd.service passes `systemd-analyze verify`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import LMTPD, require_tool

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "lmtpd.service"
INSTALLED_BINARY = "/usr/local/bin/lmtpd"


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_verifies(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    text = UNIT.read_text()
    assert INSTALLED_BINARY in text
    # verify checks that ExecStart's program exists and is executable; point it at the lmtpd
    # this test run uses instead of the path `pip install` gives on a server. The file keeps
    # its name: verify derives the unit's name and type from it.
    unit = tmp_path / "lmtpd.service"
    unit.write_text(text.replace(INSTALLED_BINARY, LMTPD))
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Warnings about the unit (unknown keys, bad values) do not change the exit status.
    assert "lmtpd.service" not in output, output


def test_unit_settings() -> None:
    settings = unit_settings(UNIT.read_text())
    assert settings["Type"] == ["notify"]
    assert settings["User"] == ["lmtpd"] and settings["Group"] == ["lmtpd"]
    assert settings["ExecStart"] == [f"{INSTALLED_BINARY} --config /etc/lmtpd/lmtpd.toml serve"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["RuntimeDirectory"] == ["lmtpd"]
    assert settings["StateDirectory"] == ["lmtpd"]
    assert int(settings["LimitNOFILE"][0]) >= 65536
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
                       "SystemCallFilter": "@system-service"}.items():
        assert settings[key] == [value], key
    assert set(settings["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET",
                                                                    "AF_INET6"}
    writable = settings["ReadWritePaths"][0].split()
    # The socket directory of contrib/postfix's chrooted set-up must be writable under
    # ProtectSystem=strict, or lmtpd cannot create its socket there.
    assert "/var/lib/lmtpd" in writable and "/run/lmtpd" in writable
    assert any(p.lstrip("-") == "/var/spool/postfix/private" for p in writable)
