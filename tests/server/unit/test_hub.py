"""Fan-out on one node: never awaits a socket, cuts off a slow consumer, spares the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Room, Users
from token_bowl_chat_server.realtime.connection import Connection
from token_bowl_chat_server.realtime.hub import Hub


def user(name: str) -> User:
    return User(name, name, Role.MEMBER, None, None, None, None, "abcd", 0)


class FakeSocket:
    """A connection's wire; ``stuck``: a peer that stopped reading (the socket stays paused)."""

    def __init__(self, stuck: bool = False) -> None:
        self.sent: list[str] = []
        self.writes = 0
        self.closed_with: int | None = None
        self.stuck = stuck
        self.gone = False

    def frame(self, text: str) -> bytes:
        return text.encode()

    @property
    def paused(self) -> bool:
        return self.stuck

    def when_writable(self, callback: Callable[[], None]) -> None:
        pass  # a stuck peer never reads again

    def write_frames(self, frames: Sequence[bytes]) -> bool:
        if self.gone:
            return False
        self.writes += 1
        self.sent.extend(frame.decode() for frame in frames)
        return True

    async def close_with(self, code: int, reason: str) -> None:
        self.closed_with = code


def connect(hub: Hub, name: str, socket: FakeSocket, outbox: int = 4) -> Connection:
    conn = Connection(socket, user(name), outbox, now=0.0)
    hub.add(conn)
    return conn


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_room_excludes_the_sender_and_users_audience_targets_all_their_connections() -> None:
    hub = Hub(clock=lambda: 0.0)
    sockets = {name: FakeSocket() for name in ("a1", "a2", "b")}
    connect(hub, "alice", sockets["a1"])
    connect(hub, "alice", sockets["a2"])
    connect(hub, "bob", sockets["b"])
    hub.deliver(Room(exclude_user_id="alice"), "room")
    hub.deliver(Users(frozenset({"alice"})), "dm")
    await settle()
    assert sockets["b"].sent == ["room"]
    assert sockets["a1"].sent == sockets["a2"].sent == ["dm"]


async def test_slow_consumer_is_closed_and_others_keep_receiving() -> None:
    hub = Hub(clock=lambda: 0.0)
    slow, fast = FakeSocket(stuck=True), FakeSocket()
    slow_conn = connect(hub, "slow", slow, outbox=4)
    connect(hub, "fast", fast, outbox=4)
    for i in range(20):
        hub.deliver(Room(), f"m{i}")  # returns at once although one socket is stuck
        await settle()
    assert fast.sent == [f"m{i}" for i in range(20)]
    assert slow_conn.close_code == CloseCode.SLOW_CONSUMER
    assert slow.closed_with == CloseCode.SLOW_CONSUMER
    assert hub.slow_consumer_closes == 1


async def test_heartbeat_pings_live_and_closes_stale_connections() -> None:
    now = [0.0]
    hub = Hub(clock=lambda: now[0])
    live, stale = FakeSocket(), FakeSocket()
    live_conn = connect(hub, "live", live)
    connect(hub, "stale", stale)
    now[0] = 50.0
    live_conn.touch(50.0)
    now[0] = 95.0
    hub.heartbeat_tick(stale_after=90.0, wall_micros=0)
    await settle()
    assert live.sent and '"type":"ping"' in live.sent[0]
    assert stale.closed_with == CloseCode.HEARTBEAT_TIMEOUT
    assert live.closed_with is None


async def test_presence_follows_connections() -> None:
    hub = Hub(clock=lambda: 0.0)
    first = connect(hub, "alice", FakeSocket())
    second = connect(hub, "alice", FakeSocket())
    assert hub.online_user_ids() == ["alice"]
    assert not hub.remove(first)
    assert hub.remove(second)
    assert hub.online_user_ids() == []
