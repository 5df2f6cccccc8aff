"""TLS for the services users connect to: a server context from the configured PEM files,
rebuilt when they change, so a renewed certificate needs no restart."""

from __future__ import annotations

import logging
import os
import ssl
from typing import Protocol

log = logging.getLogger("lmtpd.tls")


def make_tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(cert, key)
    return context


class TlsFiles(Protocol):
    """A configuration section with a certificate (POP3's, ManageSieve's)."""

    tls_cert: str
    tls_key: str

    @property
    def tls_enabled(self) -> bool: ...


class TlsContexts:
    """The server's TLS context, rebuilt when the configured files or their contents change
    (a renewed certificate is picked up by the next connection, no restart needed)."""

    def __init__(self, service: str = "pop3") -> None:
        self.service = service
        self._key: tuple[object, ...] | None = None
        self._context: ssl.SSLContext | None = None

    def get(self, section: TlsFiles) -> ssl.SSLContext | None:
        if not section.tls_enabled:
            return None
        try:
            key = (section.tls_cert, section.tls_key, os.stat(section.tls_cert).st_mtime_ns,
                   os.stat(section.tls_key).st_mtime_ns)
            if key != self._key:
                self._context = make_tls_context(section.tls_cert, section.tls_key)
                self._key = key
        except (OSError, ssl.SSLError) as error:
            if self._context is None:
                raise
            log.error("%s: cannot load %s / %s, keeping the previous certificate: %s",
                      self.service, section.tls_cert, section.tls_key, error)
        return self._context
