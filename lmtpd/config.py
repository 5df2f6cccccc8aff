"""Configuration: pydantic models of every key, TOML loading, lookup order, embedded defaults.

Every model forbids unknown keys so a typo stops the program with the key's name instead of
being silently ignored (Dovecot's `doveconf` does the same).
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SYSTEM_CONFIG = Path("/etc/lmtpd/lmtpd.toml")
ENV_CONFIG = "LMTPD_CONFIG"

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]?)B?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(Exception):
    """An invalid configuration; the message names the offending key."""


def parse_size(value: Any) -> int:
    """`"25M"`, `"512K"`, `"1G"` or a plain integer of bytes; K/M/G are powers of 1024."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 25M, 512K, 1G or a number of bytes")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]
    raise ValueError(f"{value!r} is not a size such as 25M, 512K, 1G or a number of bytes")


def parse_duration(value: Any) -> int:
    """`"24h"`, `"30m"`, `"7d"`, `"90s"` or a plain number of seconds; `"0"` means off."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 24h, 30m, 7d or a number of seconds")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return int(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    raise ValueError(f"{value!r} is not a duration such as 24h, 30m, 7d or a number of seconds")


def parse_mode(value: Any) -> int:
    """A file mode written as an octal string (`"0660"`) or an integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        mode = int(value.strip(), 8)
    else:
        raise ValueError(f"{value!r} is not an octal file mode such as \"0660\"")
    if not 0 <= mode <= 0o7777:
        raise ValueError("file mode out of range")
    return mode


Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[int, BeforeValidator(parse_duration)]
Mode = Annotated[int, BeforeValidator(parse_mode)]


def parse_listen(value: str) -> tuple[str, int]:
    """`"127.0.0.1:24"`, `"[::1]:24"` or `":24"` (all addresses) into (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not an address:port such as 127.0.0.1:24")
    return host, int(port)


def tcp_listener(listen: str, backlog: int = 1024) -> socket.socket:
    """A bound, listening, non-blocking TCP socket for `host:port`. Created with the TCP
    protocol number so that asyncio sets TCP_NODELAY on the connections it accepts (it checks
    `sock.proto`); with Nagle on, a short reply after a long one waits for a delayed ACK."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _check_listen(values: list[str]) -> list[str]:
    for value in values:
        parse_listen(value)
    return values


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class StoreConfig(_Section):
    root: Path = Path("var")
    fsync: bool = True

    @property
    def mail_root(self) -> Path:
        return self.root / "mail"

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite3"


class DomainsConfig(_Section):
    local: list[str] = Field(default_factory=lambda: ["localhost"])

    @field_validator("local")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.strip().lower() for v in values]


class LmtpConfig(_Section):
    socket: str = "var/run/lmtp.sock"
    socket_mode: Mode = 0o660
    socket_group: str = ""
    listen: list[str] = Field(default_factory=list)
    max_message_size: Size = 50 * 1024**2
    max_recipients: int = Field(default=1000, ge=1)
    # Open LMTP connections for the whole server; one more gets 421 4.3.2.
    max_connections: int = Field(default=1000, ge=1)
    recipient_delimiter: str = "+"
    # Postfix waits 600 s for the reply to the final dot; a shorter idle timeout could cut a
    # session that is merely waiting on a slow fsync.
    timeout: int = Field(default=600, ge=1)
    duplicate_window: Duration = 24 * 3600
    # How long `lmtpd trace` and `lmtpd stats` remember recipient outcomes.
    trace_retention: Duration = 30 * 86400
    # Bodies above this many bytes are spooled to a temporary file instead of held in memory.
    spool_threshold: Size = 1024**2
    # alice+lists@ kept by implicit keep goes to the folder "lists" instead of INBOX.
    detail_folder: bool = False

    _listen = field_validator("listen")(_check_listen)

    @field_validator("recipient_delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if len(value) > 1 or value in {"@", "/", "."}:
            raise ValueError("must be empty or a single character other than @ / .")
        return value


class SieveConfig(_Section):
    before: str = ""
    submission: str = ""
    # Directory of the scripts `include :global "x"` reads, as <global_dir>/x.sieve; "": none.
    global_dir: str = ""
    max_script_size: Size = 1024**2
    max_actions: int = Field(default=32, ge=1)
    max_redirects: int = Field(default=4, ge=0)

    @field_validator("submission")
    @classmethod
    def _submission(cls, value: str) -> str:
        if value and not (value.startswith("smtp://") or value.startswith("sendmail:")):
            raise ValueError('must be "", "smtp://host:port" or "sendmail:/path/to/sendmail"')
        return value


class Pop3Config(_Section):
    listen: list[str] = Field(default_factory=lambda: ["127.0.0.1:1110"])
    tls_listen: list[str] = Field(default_factory=list)
    tls_cert: str = ""
    tls_key: str = ""
    allow_plaintext_auth: bool = False
    # Addresses treated like loopback for the plaintext-auth rule (trusted networks).
    trusted_networks: list[str] = Field(default_factory=list)
    timeout: int = Field(default=600, ge=1)
    max_connections: int = Field(default=500, ge=1)
    max_connections_per_ip: int = Field(default=20, ge=1)
    login_failure_delay: float = Field(default=2.0, ge=0)
    max_login_failures: int = Field(default=5, ge=1)
    lockout: Duration = 300
    # How long a successful login is remembered (lmtpd.login_cache); 0: always check.
    login_cache: Duration = 900
    max_errors: int = Field(default=10, ge=1)

    _listen = field_validator("listen", "tls_listen")(_check_listen)

    @model_validator(mode="after")
    def _implicit_tls_needs_a_certificate(self) -> Pop3Config:
        if self.tls_listen and not self.tls_enabled:
            raise ValueError("pop3.tls_listen needs pop3.tls_cert and pop3.tls_key")
        return self

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


class ManageSieveConfig(_Section):
    listen: list[str] = Field(default_factory=list)
    tls_cert: str = ""
    tls_key: str = ""
    allow_plaintext_auth: bool = False
    # Named scripts per mailbox; also the limit of `lmtpd sieve set --name`.
    max_scripts: int = Field(default=20, ge=1)
    timeout: int = Field(default=600, ge=1)
    max_connections: int = Field(default=100, ge=1)
    max_connections_per_ip: int = Field(default=10, ge=1)

    _listen = field_validator("listen")(_check_listen)

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


class LogConfig(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class MetricsConfig(_Section):
    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value


def parse_percent(value: Any) -> float:
    """`"80%"` (or `"95.5%"`) into the fraction 0.8; above 0 and at most 100%."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", value)
        if match and 0 < float(match.group(1)) <= 100:
            return float(match.group(1)) / 100
    raise ValueError(f"{value!r} is not a percentage such as \"80%\" (above 0, at most 100)")


class QuotaConfig(_Section):
    # Fractions of a mailbox's quota at which a warning goes into its INBOX, written "80%".
    warnings: list[str] = Field(default_factory=list)

    @field_validator("warnings")
    @classmethod
    def _percentages(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_percent(value)
        return [v.strip() for v in values]

    @property
    def thresholds(self) -> list[float]:
        """The warning levels as fractions, lowest first, without repeats."""
        return sorted({parse_percent(v) for v in self.warnings})


def parse_endpoint(value: str) -> str:
    """A lookup service's address: `"unix:/path"` or `"host:port"`; `""` is off."""
    text = value.strip()
    if not text:
        return ""
    if text.startswith("unix:"):
        if not text[5:].strip():
            raise ValueError(f"{value!r}: no socket path, e.g. unix:/run/lmtpd/socketmap")
        return text
    try:
        parse_listen(text)
    except ValueError:
        raise ValueError(f"{value!r} is neither \"unix:/path\" nor \"host:port\"") from None
    return text


class PostfixConfig(_Section):
    # Postfix socketmap_table(5) server (maps domain, mailbox, alias) and SMTPD policy server.
    socketmap: str = ""
    policy: str = ""

    _endpoints = field_validator("socketmap", "policy")(parse_endpoint)


class Config(_Section):
    hostname: str = Field(default_factory=socket.getfqdn)
    user: str = ""
    group: str = ""
    # Server processes accepting LMTP and POP3 connections (Dovecot runs one per connection);
    # 0: two per CPU.
    processes: int = Field(default=0, ge=0, le=64)
    store: StoreConfig = Field(default_factory=StoreConfig)
    domains: DomainsConfig = Field(default_factory=DomainsConfig)
    lmtp: LmtpConfig = Field(default_factory=LmtpConfig)
    sieve: SieveConfig = Field(default_factory=SieveConfig)
    pop3: Pop3Config = Field(default_factory=Pop3Config)
    managesieve: ManageSieveConfig = Field(default_factory=ManageSieveConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    quota: QuotaConfig = Field(default_factory=QuotaConfig)
    postfix: PostfixConfig = Field(default_factory=PostfixConfig)

    # Where the configuration came from, for `check-config` and reloads; not a TOML key.
    source: Path | None = Field(default=None, exclude=True)

    def to_toml(self) -> str:
        """The effective configuration as TOML, as `lmtpd check-config` prints it."""
        return dump_toml(self.model_dump(mode="json", exclude={"source"}))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def dump_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    sections: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            sections.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, values in sections:
        lines.append("")
        lines.append(f"[{name}]")
        for key, value in values.items():
            if name == "lmtp" and key == "socket_mode":
                lines.append(f'{key} = "{value:04o}"')
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _format_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        message = message.removeprefix("Value error, ")
        parts.append(f"{key}: {message}")
    return "; ".join(parts)


def from_dict(data: dict[str, Any], source: Path | None = None) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        where = f"{source}: " if source else ""
        raise ConfigError(where + _format_error(error)) from None
    config.source = source
    return config


def load_for_reload(path: Path | None) -> Config:
    """The configuration a SIGHUP would switch to. An empty file is refused: it would make
    every setting its default (every real domain no longer local, say) and is far more often
    a file caught half-written than a wish."""
    if path is not None:
        try:
            empty = not path.read_bytes().strip()
        except OSError as error:
            raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
        if empty:
            raise ConfigError(f"{path}: the file is empty")
    return load(path)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Lookup order: an explicit path, then $LMTPD_CONFIG, then /etc/lmtpd/lmtpd.toml, then the
    embedded defaults rooted at ./var."""
    candidate: Path | None = None
    if path:
        candidate = Path(path)
    elif os.environ.get(ENV_CONFIG):
        candidate = Path(os.environ[ENV_CONFIG])
    elif SYSTEM_CONFIG.exists():
        candidate = SYSTEM_CONFIG
    if candidate is None:
        return from_dict({})
    try:
        raw = candidate.read_bytes()
    except OSError as error:
        raise ConfigError(f"{candidate}: cannot read: {error.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{candidate}: not valid TOML: {error}") from None
    return from_dict(data, candidate)
