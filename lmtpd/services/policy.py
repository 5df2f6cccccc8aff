"""The policy service: Postfix's SMTPD policy delegation (check_policy_service). At RCPT it
refuses a recipient lmtpd would refuse (unknown, disabled, over quota) while Postfix is
still talking to the sender, so nothing is accepted that would later bounce."""

from __future__ import annotations

import asyncio
import logging
import time

from lmtpd import logs, metrics, status
from lmtpd.postfix.lookups import LookupUnavailable, policy_action
from lmtpd.postfix.policy import PolicyReader, PolicyRequest, encode_action
from lmtpd.services.lookup import LookupService

log = logging.getLogger("lmtpd.postfix")
ACCESS_POLICY = "smtpd_access_policy"


class PolicyService(LookupService):
    name = "policy"

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                       ) -> None:
        framer = PolicyReader()
        while data := await self.receive(reader):
            for request in framer.feed(data):
                writer.write(encode_action(await self.answer(request)))
            await writer.drain()

    async def answer(self, request: PolicyRequest) -> str:
        started = time.monotonic()
        recipient = request.get("recipient")
        if request.problem or not request.get("request"):
            problem = request.problem or "no request attribute"
            log.warning(logs.event("policy-malformed", reason=problem))
            action = status.POLICY_MALFORMED
        elif (request.get("request") != ACCESS_POLICY or not recipient
              or request.get("protocol_state").upper() != "RCPT"):
            action = status.POLICY_NO_OPINION
        else:
            action = await self._check(request, recipient)
        metrics.policy_request(action.split(None, 1)[0], time.monotonic() - started)
        return action

    async def _check(self, request: PolicyRequest, recipient: str) -> str:
        fields = {"rcpt": f"<{recipient}>", "sender": f"<{request.get('sender')}>",
                  "client": request.get("client_address") or "-"}
        try:
            check = await self.lookups.check_recipient(recipient, request.size)
        except LookupUnavailable as error:
            log.warning(logs.event("policy-deferred", **fields, reason=str(error)))
            return status.POLICY_UNAVAILABLE
        except Exception:
            log.exception("policy check of %s failed", recipient)
            return status.POLICY_UNAVAILABLE
        action = policy_action(recipient, check)
        if action != status.POLICY_NO_OPINION:
            unusable = check.left_out or check.full
            log.info(logs.event("policy-refused", **fields, action=action,
                                size=str(request.size),
                                mailboxes=",".join(unusable) or "-"))
        elif log.isEnabledFor(logging.DEBUG):
            log.debug(logs.event("policy", **fields, action=action))
        return action
