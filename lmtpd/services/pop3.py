"""The POP3 service: plain (with STLS) and implicit-TLS listeners in front of lmtpd.pop3."""

from __future__ import annotations

from lmtpd.config import Config
from lmtpd.pop3.server import READ_SIZE, Pop3Server
from lmtpd.services import Runtime
from lmtpd.services.text import TextService, check_certificate
from lmtpd.textsession import TextServer


class Pop3Service(TextService):
    name = "pop3"
    read_size = READ_SIZE

    def bind(self, config: Config) -> None:
        pop3 = config.pop3
        if pop3.tls_enabled:
            check_certificate("pop3", pop3.tls_cert, pop3.tls_key)
        for listen in pop3.listen:
            self.listen("pop3", listen)
        for listen in pop3.tls_listen:
            self.listen("pop3s", listen, implicit_tls=True)

    def make_server(self, runtime: Runtime) -> TextServer:
        return Pop3Server(runtime.workers, runtime.shared.pop3, runtime.shared.logins)
