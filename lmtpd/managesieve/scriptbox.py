"""Carries out ManageSieve script operations on one mailbox's scripts: compiles on the file
pool, reads and writes the index on its thread, and logs and counts every change."""

from __future__ import annotations

import logging

from lmtpd import logs, metrics
from lmtpd.config import Config
from lmtpd.managesieve import operations as op
from lmtpd.managesieve.responses import Failure, Result
from lmtpd.scripts import SieveSyntaxError, check_script
from lmtpd.store.index import (
    ActiveScriptError,
    DuplicateError,
    Index,
    MailboxRow,
    NotFoundError,
    ScriptCountError,
)
from lmtpd.store.worker import Workers

log = logging.getLogger("lmtpd.managesieve")

_FAILURES: dict[type[Exception], Failure] = {
    NotFoundError: Failure.NONEXISTENT,
    ActiveScriptError: Failure.ACTIVE,
    DuplicateError: Failure.ALREADYEXISTS,
}


class ScriptBox:
    def __init__(self, workers: Workers, mailbox: MailboxRow, ip: str) -> None:
        self.workers = workers
        self.mailbox = mailbox
        self.ip = ip

    @property
    def config(self) -> Config:
        return self.workers.store.config  # read at each use: a reload replaces it

    def index(self) -> Index:
        """The index, on the index thread (the store may reopen it)."""
        return self.workers.store.index

    async def perform(self, operation: op.Operation) -> Result:
        try:
            return await self._perform(operation)
        except Exception as error:
            log.error("managesieve: user=%s %s failed: %s", self.mailbox.address,
                      type(operation).__name__, error)
            return Result(Failure.TRYLATER)

    async def _perform(self, operation: op.Operation) -> Result:
        mailbox_id = self.mailbox.id
        db = self.workers.db
        match operation:
            case op.ListScripts():
                rows = await db(lambda: self.index().sieve_scripts(mailbox_id))
                return Result(scripts=tuple((row.name, row.active) for row in rows))
            case op.GetScript(name=name):
                row = await db(lambda: self.index().sieve_script(mailbox_id, name))
                return Result(Failure.NONEXISTENT) if row is None else Result(text=row.text)
            case op.CheckScript(text=text):
                return await self._compile(text) or Result()
            case op.HaveSpace(name=name):
                return await self._have_space(name)
        return await self._change(operation)

    async def _change(self, operation: op.Operation) -> Result:
        """The commands that change something: each gets a log line and a metric, whether
        it succeeded or not."""
        result = await self._changing(operation)
        command = type(operation).__name__.lower()
        outcome = (result.failure.value or "invalid") if result.failure else "ok"
        metrics.managesieve_change(command, outcome.lower())
        fields = {"user": self.mailbox.address, "ip": self.ip}
        fields.update({k: str(v) if v is not None else "-" for k, v in vars(operation).items()
                       if k != "text"})
        if isinstance(operation, op.PutScript):
            fields["bytes"] = str(len(operation.text.encode()))
        fields["result"] = outcome.lower()
        log.info(logs.event(f"managesieve: {command}", **fields))
        return result

    async def _changing(self, operation: op.Operation) -> Result:
        mailbox_id = self.mailbox.id
        db = self.workers.db
        try:
            match operation:
                case op.PutScript(name=name, text=text):
                    problem = await self._compile(text)
                    if problem is not None:
                        return problem
                    limit = self.config.managesieve.max_scripts
                    await db(lambda: self.index().put_sieve_script(
                        mailbox_id, name, text, max_scripts=limit))
                case op.SetActive(name=name):
                    return await self._set_active(name)
                case op.DeleteScript(name=name):
                    await db(lambda: self.index().delete_sieve_script(mailbox_id, name))
                case op.RenameScript(old=old, new=new):
                    await db(lambda: self.index().rename_sieve_script(mailbox_id, old, new))
        except ScriptCountError as error:
            return Result(Failure.MAXSCRIPTS, limit=error.limit)
        except (NotFoundError, ActiveScriptError, DuplicateError) as error:
            return Result(_FAILURES[type(error)])
        return Result()

    async def _set_active(self, name: str | None) -> Result:
        """As Pigeonhole does, a script is compiled again before it is made active: one
        stored by an older release may use what this one refuses."""
        mailbox_id = self.mailbox.id
        db = self.workers.db
        if name is None:
            active = await db(lambda: self.index().sieve_script(mailbox_id, None))
            await db(lambda: self.index().activate_sieve_script(mailbox_id, None))
            return Result(changed=active is not None)
        row = await db(lambda: self.index().sieve_script(mailbox_id, name))
        if row is None:
            return Result(Failure.NONEXISTENT)
        problem = await self._compile(row.text)
        if problem is not None:
            return problem
        if not row.active:
            await db(lambda: self.index().activate_sieve_script(mailbox_id, name))
        return Result(changed=not row.active)

    async def _have_space(self, name: str) -> Result:
        rows = await self.workers.db(lambda: self.index().sieve_scripts(self.mailbox.id))
        limit = self.config.managesieve.max_scripts
        if all(row.name != name for row in rows) and len(rows) >= limit:
            return Result(Failure.MAXSCRIPTS, limit=limit)
        return Result()

    async def _compile(self, text: str) -> Result | None:
        """None when `text` compiles; else the refusal, with line and column."""
        mailbox_id = self.mailbox.id
        personal = await self.workers.db(lambda: self.index().personal_scripts(mailbox_id))
        try:
            await self.workers.io(check_script, self.config, text, personal)
        except SieveSyntaxError as error:
            return Result(Failure.INVALID, message=str(error))
        return None
