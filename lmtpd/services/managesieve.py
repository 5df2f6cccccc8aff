"""The ManageSieve service: its TCP listeners in front of lmtpd.managesieve."""

from __future__ import annotations

from lmtpd.config import Config
from lmtpd.managesieve.server import READ_SIZE, ManageSieveServer
from lmtpd.services import Runtime
from lmtpd.services.text import TextService, check_certificate
from lmtpd.textsession import TextServer


class ManageSieveService(TextService):
    name = "managesieve"
    read_size = READ_SIZE

    def bind(self, config: Config) -> None:
        section = config.managesieve
        if section.listen and section.tls_enabled:
            check_certificate("managesieve", section.tls_cert, section.tls_key)
        for listen in section.listen:
            self.listen("managesieve", listen)

    def make_server(self, runtime: Runtime) -> TextServer:
        return ManageSieveServer(runtime.workers, runtime.shared.managesieve,
                                 runtime.shared.logins)
