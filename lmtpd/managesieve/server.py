"""ManageSieve connections: sockets, STARTTLS, connection limits and logins around the session
state machine of lmtpd.managesieve.protocol; script operations go to lmtpd.managesieve.scriptbox.

Blocking work never runs on the event loop: the password check, the index and the compiler
run in the worker pools.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from lmtpd import metrics
from lmtpd.config import ManageSieveConfig
from lmtpd.logins import Attempt, Refusal
from lmtpd.managesieve import protocol
from lmtpd.managesieve.protocol import Capabilities
from lmtpd.managesieve.scriptbox import ScriptBox
from lmtpd.scripts import notify_capability, sieve_capability
from lmtpd.textsession import TextServer, TextSession
from lmtpd.throttle import plaintext_auth_allowed

log = logging.getLogger("lmtpd.managesieve")

READ_SIZE = 16384
# Command lines without their literals; RFC 5804 names no limit, this is room for any real
# command (a script travels as a literal, bounded by sieve.max_script_size).
MAX_LINE = 8192

class ManageSieveServer(TextServer):
    """What the ManageSieve connections of one process share: limits, logins, TLS."""

    service = "managesieve"

    def section(self) -> ManageSieveConfig:
        return self.config.managesieve

    def capabilities(self) -> Capabilities:
        return Capabilities(sieve=sieve_capability(), notify=notify_capability(),
                            max_redirects=self.config.sieve.max_redirects)

    def refuse(self, writer: asyncio.StreamWriter, **options: Any) -> None:
        writer.write(b'BYE (TRYLATER) "Too many connections, try again later."\r\n')

class Session(TextSession):
    """One ManageSieve connection: drives a protocol.Connection and does the I/O it asks for."""

    service = "managesieve"
    read_size = READ_SIZE
    machine: protocol.Connection  # the session state machine, made when the session starts

    server: ManageSieveServer
    scripts: ScriptBox | None = None  # the user's scripts, once logged in

    @property
    def section(self) -> ManageSieveConfig:
        return self.server.config.managesieve

    @property
    def timeout(self) -> float:
        return float(self.section.timeout)

    def plaintext_allowed(self, tls_active: bool) -> bool:
        config = self.server.config
        return plaintext_auth_allowed(
            self.ip, tls_active=tls_active,
            allow_plaintext_auth=config.managesieve.allow_plaintext_auth,
            trusted_networks=config.pop3.trusted_networks)

    def tls_context(self) -> ssl.SSLContext | None:
        return self.server.tls.get(self.section)

    async def run(self, **_: Any) -> None:
        self.machine = protocol.Connection(
            self.server.capabilities(), tls_available=self.tls_context() is not None,
            plaintext_allowed=self.plaintext_allowed(False),
            max_script_size=self.server.config.sieve.max_script_size, max_line=MAX_LINE)
        await self.serve(self.machine)

    async def handle(self, event: object) -> bool:
        if isinstance(event, protocol.LoggedOut):
            self.logout()
            await self.send(event.reply)
        else:
            assert isinstance(event, protocol.Perform) and self.scripts is not None
            result = await self.scripts.perform(event.operation)
            await self.send(self.machine.completed(result).data)
        return False

    def end(self) -> None:
        self.logout()

    def logout(self) -> None:
        """Forget the mailbox (UNAUTHENTICATE, LOGOUT or a dropped connection)."""
        scripts, self.scripts = self.scripts, None
        if scripts is not None:
            log.info("managesieve: logout user=%s ip=%s", scripts.mailbox.address, self.ip)

    async def login(self, event: protocol.Authenticate) -> protocol.Send:
        conn = self.machine
        outcome = await self.server.auth.login(Attempt(
            "managesieve", event.username, event.password, event.mechanism, self.address,
            self.ip))
        if isinstance(outcome, Refusal):
            return conn.login_failed(outcome)
        self.scripts = ScriptBox(self.server.workers, outcome, self.ip)
        metrics.managesieve_login()
        log.info("managesieve: login user=%s ip=%s method=%s tls=%s", outcome.address,
                 self.ip, event.mechanism, "yes" if conn.tls_active else "no")
        return conn.login_succeeded(outcome.address)

    async def tls_started(self) -> None:
        await self.send(self.machine.tls_started(
            plaintext_allowed=self.plaintext_allowed(True)).data)


ManageSieveServer.session_class = Session
