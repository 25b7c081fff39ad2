"""The Redis broker between two nodes in one process (two brokers, two hubs, one real Redis):
frames and commands cross, a node never gets its own frames twice, seq frames go through each
node's sequencer, and a node whose Redis went away delivers locally, then recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.redisserver import RedisServer
from tests.waiting import eventually
from token_bowl_chat_server.realtime.audience import Audience, Dialect, OwnCopies, Room, Users
from token_bowl_chat_server.realtime.broker_redis import RedisBroker
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.sequencer import SeqFrame, Sequencer


class RecordingHub(Hub):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[Audience, str, int | None]] = []

    def deliver(self, audience: Audience, text: str, seq: int | None = None) -> None:
        self.got.append((audience, text, seq))

    def texts(self) -> list[str]:
        return [text for _, text, _ in self.got]


class Committed:
    """The database's last seq, as the brokers ask for it; and no frames to fill with."""

    def __init__(self) -> None:
        self.last = 0

    async def last_seq(self) -> int:
        return self.last

    async def fill(self, first: int, last: int) -> list[SeqFrame]:
        return [SeqFrame(seq, Room(), f"filled {seq}") for seq in range(first, last + 1)]


class Node:
    def __init__(self, url: str, name: str, committed: Committed, hold: float = 0.05) -> None:
        self.hub = RecordingHub()
        self.redis = Redis.from_url(url, socket_connect_timeout=1.0)
        sequencer = Sequencer(self.hub.deliver, committed.fill, committed.last, hold=hold)
        self.broker = RedisBroker(
            self.hub, sequencer, self.redis, name, committed.last_seq, channel=f"test:{name}"
        )

    async def close(self) -> None:
        await self.broker.stop()
        await self.redis.aclose()


async def _pair(url: str, committed: Committed, hold: float = 0.05) -> tuple[Node, Node]:
    a, b = Node(url, "a", committed, hold), Node(url, "b", committed, hold)
    b.broker.channel = a.broker.channel  # one channel for the deployment
    for node in (a, b):
        node.broker.start()
        assert await node.broker.wait_subscribed(10.0)
    return a, b


@pytest.fixture
async def nodes(redis: Redis, redis_server: RedisServer) -> AsyncIterator[tuple[Node, Node]]:
    a, b = await _pair(redis_server.url, Committed())
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_frames_cross_to_the_other_node_once_with_their_audience(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    audiences: list[Audience] = [
        Room(exclude_user_id="u1"),
        Users(frozenset({"u2", "u3"}), Dialect.EXTENDED),
        OwnCopies("u4"),
        Room(dialect=Dialect.LEGACY),
    ]
    for i, audience in enumerate(audiences):
        a.broker.publish(audience, f'{{"n":{i}}}')
    await eventually(lambda: len(b.hub.got) == 4, what=f"b got {b.hub.got}")
    assert [audience for audience, _, _ in b.hub.got] == audiences
    assert b.hub.texts() == [f'{{"n":{i}}}' for i in range(4)]
    assert a.hub.texts() == b.hub.texts()  # delivered at home at once, not again from Redis
    b.broker.publish(Room(), "from b")
    await eventually(lambda: "from b" in a.hub.texts())
    assert a.hub.texts().count("from b") == 1 and b.hub.texts().count("from b") == 1


@pytest.fixture
async def patient_nodes(
    redis: Redis, redis_server: RedisServer
) -> AsyncIterator[tuple[Node, Node]]:
    """Two nodes whose sequencers hold a gap longer than any Redis round trip, on a loaded
    machine too (at 50 ms a frame still on its way was once read from the database)."""
    a, b = await _pair(redis_server.url, Committed(), hold=30.0)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_seq_frames_from_two_nodes_reach_both_hubs_in_seq_order(
    patient_nodes: tuple[Node, Node],
) -> None:
    a, b = patient_nodes
    # Commit order 1..6 split over the nodes; each publishes its own in order, as a node does.
    for seq in (2, 4, 6):
        b.broker.publish(Room(), f"m{seq}", seq)
    for seq in (1, 3, 5):
        a.broker.publish(Room(), f"m{seq}", seq)
    for node in (a, b):
        await _until_count(node.hub, 6)
        assert [seq for _, _, seq in node.hub.got] == [1, 2, 3, 4, 5, 6]
        assert node.hub.texts() == [f"m{seq}" for seq in range(1, 7)]  # live, not filled


async def _until_count(hub: RecordingHub, count: int) -> None:
    await eventually(lambda: len(hub.got) == count, what=f"got {hub.got}")


async def test_commands_run_on_the_other_nodes_only(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    heard: dict[str, list[dict[str, object]]] = {"a": [], "b": []}
    a.broker.on_command("close_user", heard["a"].append)
    b.broker.on_command("close_user", heard["b"].append)
    a.broker.broadcast("close_user", user_id="u1", code=1008, reason="API key rotated")
    a.broker.broadcast("unknown_to_this_version", x=1)
    await eventually(lambda: len(heard["b"]) == 1)
    assert heard["b"] == [{"user_id": "u1", "code": 1008, "reason": "API key rotated"}]
    assert heard["a"] == []


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, to stop and start."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


async def test_without_redis_a_node_delivers_locally_catches_up_from_the_database_and_recovers(
    own_redis: RedisServer,
) -> None:
    committed = Committed()
    a, b = await _pair(own_redis.url, committed)
    try:
        own_redis.kill()
        await eventually(lambda: not a.broker.connected and not b.broker.connected, 10.0)
        assert not await a.broker.ping()
        a.broker.publish(Room(), "typing, local only")
        a.broker.publish(Room(), "m1", 1)
        committed.last = 1
        assert a.hub.texts() == ["typing, local only", "m1"]
        # b hears nothing through Redis, but finds seq 1 in the database by itself.
        await eventually(lambda: b.hub.texts() == ["filled 1"], 10.0, f"b got {b.hub.got}")

        own_redis.start()
        await eventually(lambda: a.broker.connected and b.broker.connected, 20.0)
        assert await a.broker.ping()
        a.broker.publish(Room(), "m2", 2)
        await eventually(lambda: b.hub.texts()[-1:] == ["m2"], 10.0, f"b got {b.hub.got}")
        assert [seq for _, _, seq in b.hub.got] == [1, 2]
    finally:
        await a.close()
        await b.close()


async def test_frames_queued_when_a_node_stops_still_reach_the_others(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    # Published and stopped at once: the publisher task never got to run before the stop.
    for i in range(300):
        a.broker.publish(Room(), f"last words {i}")
    await a.broker.stop()
    await eventually(lambda: len(b.hub.texts()) == 300, what=f"{len(b.hub.texts())} of 300")
    assert b.hub.texts() == [f"last words {i}" for i in range(300)]
