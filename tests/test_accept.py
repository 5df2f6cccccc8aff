"""BalancedListener on its own: a busier process steps back so a less busy one can accept, for
at most PATIENCE, and every new connection starts a wait of its own."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from lmtpd.accept import PATIENCE, BalancedListener, LoadBoard, accept_balanced


class Recorder(asyncio.Protocol):
    accepted: list[float]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.accepted.append(asyncio.get_running_loop().time())


def listening_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(16)
    sock.setblocking(False)
    return sock


async def start(path: Path, board: LoadBoard) -> tuple[BalancedListener, list[float]]:
    accepted: list[float] = []

    def factory() -> Recorder:
        recorder = Recorder()
        recorder.accepted = accepted
        return recorder

    return accept_balanced(listening_socket(path), factory, board), accepted


async def connect(path: Path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.setblocking(False)
    await asyncio.get_running_loop().sock_connect(client, str(path))
    return client


async def until(condition: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.001)


def test_the_least_busy_process_accepts_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        board = LoadBoard(2)
        board.enter(0)
        listener, accepted = await start(tmp_path / "s", board)
        asked = asyncio.get_running_loop().time()
        client = await connect(tmp_path / "s")
        await until(lambda: accepted)
        assert accepted[0] - asked < PATIENCE
        listener.close()
        client.close()

    asyncio.run(scenario())


def test_a_busier_process_waits_then_accepts_when_nobody_else_does(tmp_path: Path) -> None:
    async def scenario() -> None:
        board = LoadBoard(2)
        board.enter(1)
        board.opened()  # process 1 has a connection, process 0 none: 1 steps back
        listener, accepted = await start(tmp_path / "s", board)
        asked = asyncio.get_running_loop().time()
        client = await connect(tmp_path / "s")
        await until(lambda: accepted)
        assert accepted[0] - asked >= PATIENCE * 0.9
        listener.close()
        client.close()

    asyncio.run(scenario())


def test_each_connection_starts_a_wait_of_its_own(tmp_path: Path) -> None:
    """The wait for a connection that another process took must not count against the next
    one: otherwise, after one step back, the busier process takes the next burst at once."""

    async def scenario() -> None:
        board = LoadBoard(2)
        board.enter(1)
        board.opened()
        listener, accepted = await start(tmp_path / "s", board)
        first = await connect(tmp_path / "s")
        await asyncio.sleep(PATIENCE / 5)  # the listener is stepping back...
        taken, _ = listener.sockets[0].accept()  # ...and the other process takes it
        await asyncio.sleep(PATIENCE * 4)
        assert accepted == []
        asked = asyncio.get_running_loop().time()
        second = await connect(tmp_path / "s")
        await until(lambda: accepted)
        assert accepted[0] - asked >= PATIENCE * 0.9
        listener.close()
        for sock in (first, taken, second):
            sock.close()

    asyncio.run(scenario())


def test_a_closed_connection_leaves_the_board(tmp_path: Path) -> None:
    async def scenario() -> None:
        board = LoadBoard(2)
        board.enter(0)
        listener, accepted = await start(tmp_path / "s", board)
        client = await connect(tmp_path / "s")
        await until(lambda: accepted)
        assert board.busier_than_another()  # 1 against 0
        client.close()
        await until(lambda: not board.busier_than_another())
        listener.close()

    asyncio.run(scenario())
