"""Fault injection for failure tests, off unless $LMTPD_FAULTS_FILE is set at start-up.

The file holds lines `<point> <errno name>`, e.g. `fsync EIO` or `write ENOSPC`; while a line
for a point is present, the store raises that OSError there. Tests edit the file while the
server runs, so the same process can fail and then recover. Points: `write` (the message
file), `fsync` (file or directory), `index` (the index row).
"""

from __future__ import annotations

import errno
import os

_FAULTS_FILE = os.environ.get("LMTPD_FAULTS_FILE", "")


def check(point: str) -> None:
    if not _FAULTS_FILE:
        return
    try:
        with open(_FAULTS_FILE) as handle:
            lines = handle.read().split("\n")
    except FileNotFoundError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == point:
            code = getattr(errno, parts[1], errno.EIO)
            raise OSError(code, f"{os.strerror(code)} (injected at {point})")
