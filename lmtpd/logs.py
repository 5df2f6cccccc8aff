"""Logging set-up: plain lines on stderr (journald adds the time) or JSON lines."""

from __future__ import annotations

import json
import logging
import sys
import time

from lmtpd.config import Config


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' "\\=') and value.isprintable():
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def event(kind: str, **fields: str) -> str:
    """One greppable line in Postfix's spirit: `delivered rcpt=<a@x> mailbox=a@x ...`."""
    return " ".join([kind, *(f"{k}={_quote(str(v))}" for k, v in fields.items())])


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("lmtpd[%(name)s] %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log.level.upper())
    # aiosmtpd logs every command at INFO, which would flood an operator's journal.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
