"""The socketmap service: Postfix's socketmap_table(5) lookups (maps `domain`, `mailbox`,
`alias`) answered live from the index."""

from __future__ import annotations

import asyncio
import logging
import time

from lmtpd import logs, metrics, status
from lmtpd.postfix.lookups import MAPS, LookupUnavailable
from lmtpd.postfix.socketmap import (
    Broken,
    Event,
    Lookup,
    Reply,
    SocketmapReader,
    Status,
)
from lmtpd.services.lookup import LookupService

log = logging.getLogger("lmtpd.postfix")


class SocketmapService(LookupService):
    name = "socketmap"

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                       ) -> None:
        framer = SocketmapReader()
        while data := await self.receive(reader):
            for event in framer.feed(data):
                writer.write((await self.answer(event)).encode())
            if framer.broken:
                break
            await writer.drain()
        await writer.drain()

    async def answer(self, event: Event) -> Reply:
        started = time.monotonic()
        if isinstance(event, Lookup):
            map_name = event.map if event.map in MAPS else "other"
            reply = await self._look_up(event)
        else:
            map_name = "-"
            how = "closing" if isinstance(event, Broken) else "refused"
            log.warning(logs.event("socketmap-malformed", reason=event.reason, action=how))
            reply = Reply(Status.PERM, f"{status.SOCKETMAP_MALFORMED}: {event.reason}")
        metrics.socketmap_lookup(map_name, reply.status.value, time.monotonic() - started)
        return reply

    async def _look_up(self, lookup: Lookup) -> Reply:
        try:
            reply = await self.lookups.table(lookup)
        except LookupUnavailable as error:
            log.warning(logs.event("socketmap-deferred", map=lookup.map, key=lookup.key,
                                   reason=str(error)))
            return Reply(Status.TEMP, status.SOCKETMAP_UNAVAILABLE)
        except Exception:
            log.exception("socketmap lookup %s %r failed", lookup.map, lookup.key)
            return Reply(Status.TEMP, status.SOCKETMAP_UNAVAILABLE)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(logs.event("socketmap", map=lookup.map, key=lookup.key,
                                 result=reply.status.value, value=reply.text))
        return reply
