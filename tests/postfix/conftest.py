"""Fixtures for the Postfix end-to-end tests: lmtpd behind a private Postfix instance."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lmtpd, free_port, require_tool
from tests.postfix.postfix_instance import Postfix


@dataclass
class MailSystem:
    lmtpd: Lmtpd
    postfix: Postfix

    def inbox(self, address: str) -> list[Path]:
        new = self.lmtpd.maildir(address) / "new"
        return sorted(new.iterdir()) if new.is_dir() else []

    def diagnostics(self) -> str:
        return (f"--- Postfix maillog ---\n{self.postfix.log()}\n"
                f"--- lmtpd log ---\n{self.lmtpd.log()}")


MakeSystem = Callable[..., MailSystem]


@pytest.fixture
def mail_system_factory(lmtpd_factory: Any, request: pytest.FixtureRequest) -> Iterator[MakeSystem]:
    """Make an lmtpd (mailboxes alice@ and bob@example.org) with a Postfix in front of it.

    variant: "chroot" (the Debian default of contrib/postfix) or "nochroot" (its alternative);
    maps: whether main.cf keeps contrib's virtual_mailbox_maps line; lmtpd_env: environment of
    lmtpd serve (fault injection); main_cf: more main.cf settings. Postfix is stopped before
    lmtpd, so that its cached LMTP connections are gone when lmtpd shuts down."""
    tools = {tool: require_tool(tool) for tool in ("postfix", "postqueue", "postmap")}
    made: list[MailSystem] = []
    request.node.mail_systems = made

    def make(variant: str = "chroot", maps: bool = False,
             lmtpd_env: dict[str, str] | None = None,
             main_cf: dict[str, str] | None = None) -> MailSystem:
        postfix = Postfix(variant=variant, maps=maps, port=free_port(), tools=tools,
                          extra_main_cf=main_cf or {})
        try:
            lmtpd = lmtpd_factory(postfix.lmtpd_settings(), name=f"lmtpd{len(made)}")
            system = MailSystem(lmtpd, postfix)
            made.append(system)
        except BaseException:
            postfix.stop()
            raise
        lmtpd.add_mailbox("alice@example.org")
        lmtpd.add_mailbox("bob@example.org")
        lmtpd.start(env=lmtpd_env)
        postfix.start()
        return system

    yield make
    for system in made:
        system.postfix.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator:
    """On failure, attach Postfix's log and lmtpd's log to the report: most failures here are
    explained by a line in one of them, and both are deleted at teardown."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for system in getattr(item, "mail_systems", []):
            report.sections.append((f"Postfix maillog ({system.postfix.variant})",
                                    system.postfix.log()))
            report.sections.append(("lmtpd log", system.lmtpd.log()))
