"""Presence in Redis across two nodes: the online list is the union of the nodes, a user is
announced once however many nodes hold them, and a node that dies without a word drops out
within its heartbeat timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.waiting import eventually
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Audience
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_redis import RedisPresenceStore, node_key


def _user(name: str) -> User:
    return User(f"id-{name}", name, Role.MEMBER, None, None, None, None, "h", 0)


class Node:
    def __init__(self, redis: Redis, name: str, timeout: float = 30.0) -> None:
        self.hub = Hub()
        self.announced: list[tuple[str, bool]] = []
        self.store = RedisPresenceStore(
            self.hub, redis, name, self.publish, interval=0.05, timeout=timeout,
            connected=lambda: True,
        )  # fmt: skip

    def publish(self, audience: Audience, text: str) -> None:
        online = '"online":true' in text
        self.announced.append((text.split('"username":"')[1].split('"')[0], online))

    def connect(self, user: User) -> None:
        """What the endpoint does for a connection that opens."""
        if self.hub.presence.connect(user.id):
            self.store.user_online(user)

    def disconnect(self, user: User) -> None:
        if self.hub.presence.disconnect(user.id):
            self.store.user_offline(user)

    async def kill(self) -> None:
        """SIGKILL, as far as Redis can tell: the node stops writing and says nothing."""
        task = self.store._task
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.store._task = None


@pytest.fixture
async def nodes(redis: Redis) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node(redis, "a"), Node(redis, "b")
    for node in (a, b):
        await node.store.register()
        node.store.start()
    try:
        yield a, b
    finally:
        await a.store.stop()
        await b.store.stop()


async def _online(node: Node) -> list[str]:
    return await node.store.online_user_ids()


async def _until_online(node: Node, expected: list[str]) -> None:
    found: list[str] = []
    try:
        async with asyncio.timeout(10):
            while found != expected:
                found = await _online(node)
    except TimeoutError:
        raise AssertionError(f"online: {found}, expected {expected}") from None


async def test_the_online_list_is_the_union_of_the_nodes_in_the_order_users_came(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    alice, bob = _user("alice"), _user("bob")
    a.connect(alice)
    await _until_online(b, ["id-alice"])
    b.connect(bob)
    await _until_online(a, ["id-alice", "id-bob"])
    b.connect(alice)  # a second node: still listed once
    await _until_online(a, ["id-alice", "id-bob"])
    a.disconnect(alice)  # online on b only, since after bob came
    await _until_online(a, ["id-bob", "id-alice"])
    b.disconnect(alice)
    await _until_online(a, ["id-bob"])


async def _until_listed(redis: Redis, node: str, user: User, listed: bool) -> None:
    """Until ``node`` has written (or removed) ``user`` in Redis."""
    async with asyncio.timeout(10):
        while (await redis.zscore(node_key(node), user.id) is not None) != listed:
            await asyncio.sleep(0.01)


async def test_a_user_on_two_nodes_is_announced_online_once_and_offline_when_the_last_goes(
    nodes: tuple[Node, Node], redis: Redis
) -> None:
    a, b = nodes
    carol = _user("carol")
    a.connect(carol)
    await eventually(lambda: a.announced == [("carol", True)])
    await _until_online(b, ["id-carol"])
    b.connect(carol)
    await _until_listed(redis, "b", carol, True)
    b.disconnect(carol)
    await _until_listed(redis, "b", carol, False)
    a.disconnect(carol)
    await eventually(lambda: ("carol", False) in a.announced, what=f"{a.announced}")
    # b saw carol online on a both times: it announced neither its connect nor its leave.
    assert b.announced == []
    assert a.announced == [("carol", True), ("carol", False)]


async def test_a_node_that_stops_renewing_drops_out_within_its_timeout(
    nodes: tuple[Node, Node], redis: Redis
) -> None:
    a, other = nodes
    b = Node(redis, "short-lived", timeout=1.0)
    b.store.start()
    dave = _user("dave")
    b.connect(dave)
    await _until_online(a, ["id-dave"])
    await b.kill()
    await _until_online(a, [])
    # A survivor (either) reaps b and tells the room dave left, once.
    await eventually(lambda: _announced(a, other, "dave") == [False])
    await asyncio.sleep(0.2)  # a few more ticks of both: nobody announces it again
    assert a.announced + other.announced == [("dave", False)]
    assert await redis.exists(node_key("short-lived")) == 0


async def test_a_dead_nodes_user_still_held_by_a_live_node_is_not_announced_offline(
    nodes: tuple[Node, Node], redis: Redis
) -> None:
    a, b = nodes
    doomed = Node(redis, "doomed", timeout=1.0)
    doomed.store.start()
    erin, frank = _user("erin"), _user("frank")
    doomed.connect(erin)
    doomed.connect(frank)
    await _until_online(a, ["id-erin", "id-frank"])
    a.connect(erin)
    await _until_listed(redis, "a", erin, True)
    await doomed.kill()
    await eventually(lambda: _announced(a, b, "frank") == [False])
    await _until_online(a, ["id-erin"])
    assert a.announced + b.announced == [("frank", False)]


async def test_simultaneous_changes_on_two_nodes_are_announced_exactly_once(
    nodes: tuple[Node, Node],
) -> None:
    """The last connections of a user on two nodes closing at once (and the first two
    opening at once) race; Redis runs each change and its check alone, so every round is
    announced once, never twice and never not at all."""
    a, b = nodes
    rounds = 40
    for i in range(rounds):
        user = _user(f"racer{i}")
        a.connect(user)
        b.connect(user)
        await _until_announced(a, b, user.username, [True])
        a.disconnect(user)
        b.disconnect(user)
        await _until_announced(a, b, user.username, [True, False])
    await _until_online(a, [])
    assert sorted(name for name, _ in a.announced + b.announced) == sorted(
        [f"racer{i}" for i in range(rounds)] * 2
    )


async def _until_announced(a: Node, b: Node, username: str, expected: list[bool]) -> None:
    """Wait (generously: a loaded machine) until as many announcements as ``expected`` were
    made for ``username``, then require exactly those: a slow round is not a double one."""
    await eventually(
        lambda: len(_announced(a, b, username)) >= len(expected),
        30,
        f"{username}: {_announced(a, b, username)} announced, waiting for {expected}",
    )
    assert _announced(a, b, username) == expected


def _announced(a: Node, b: Node, username: str) -> list[bool]:
    """Both nodes' announcements for ``username``: onlines first (a round's order)."""
    return sorted(
        (online for name, online in a.announced + b.announced if name == username),
        reverse=True,
    )


async def test_a_stopping_node_announces_the_changes_it_had_not_written(
    nodes: tuple[Node, Node], redis: Redis
) -> None:
    a, b = nodes
    gina, hal = _user("gina"), _user("hal")
    a.connect(gina)
    a.connect(hal)
    b.connect(hal)  # hal stays online on b
    await _until_online(b, ["id-gina", "id-hal"])
    # b's own hal is listed from its hub at once; the reap below reads what b wrote.
    await _until_listed(redis, "b", hal, True)
    await eventually(lambda: _announced(a, b, "hal") == [True])
    a.disconnect(gina)
    a.disconnect(hal)
    await a.store.stop()  # before its writer ran: the two changes were still queued
    assert [entry for entry in a.announced if not entry[1]] == [("gina", False)]
    await _until_online(b, ["id-hal"])
    assert not any(name == "hal" and not online for name, online in b.announced)
