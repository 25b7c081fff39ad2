"""Gap-free resume and idempotent sends (DESIGN.md guarantees 2 and 3, server side)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Account, LiveServer
from tests.wsclient import WsClient, is_delivery


async def open_ws(
    server: LiveServer, account: Account, since: int | None = None, **options: Any
) -> WsClient:
    query = f"&since_seq={since}" if since is not None else ""
    return await WsClient.connect(server.ws_url, account.api_key, query=query, **options)


async def test_every_connection_opens_with_hello(live_server: LiveServer) -> None:
    alice = live_server.register()
    client = await open_ws(live_server, alice)
    hello = await client.recv()
    assert hello["type"] == "hello" and hello["user_id"] == alice.id
    assert hello["username"] == alice.username and isinstance(hello["last_seq"], int)
    assert hello["protocol_version"] and hello["heartbeat_interval"] > 0
    await client.close()


async def test_resume_replays_exactly_what_live_delivery_would_have_sent(
    live_server: LiveServer,
) -> None:
    me, friend, other = (live_server.register() for _ in range(3))
    first = await open_ws(live_server, me)
    cursor = (await first.recv())["last_seq"]
    await first.close()

    f = await open_ws(live_server, friend)
    o = await open_ws(live_server, other)
    mine = await open_ws(live_server, me)  # my other device, still connected
    expected: list[str] = []
    for i in range(3):
        expected.append((await f.request({"content": f"room {i}"}))["message"]["id"])
        expected.append(
            (await f.request({"content": f"dm {i}", "to_username": me.username}))["message"]["id"]
        )
        await o.request({"content": f"not for me {i}", "to_username": friend.username})
        await mine.request({"content": f"my own {i}"})  # never delivered to my connections
    for client in (f, o, mine):
        await client.close()

    back = await open_ws(live_server, me, since=cursor)
    hello = await back.recv()
    assert hello["type"] == "hello" and hello["last_seq"] is None
    resumed = await back.recv_until(lambda frame: frame.get("type") == "resumed")
    during = back.seen[1:-1]
    replayed = [frame for frame in during if is_delivery(frame)]
    # Live frames that arrive during the replay come before ``resumed`` too: here only the
    # others' presence (their sockets just closed; on two nodes announced a moment later).
    assert all(frame["type"] == "presence" for frame in during if not is_delivery(frame))
    assert [frame["id"] for frame in replayed] == expected
    seqs = [frame["seq"] for frame in replayed]
    assert seqs == sorted(seqs) and seqs[0] > cursor
    assert resumed["since_seq"] == cursor and resumed["replayed"] == len(expected)
    assert resumed["last_seq"] >= seqs[-1]
    await back.close()


async def test_resume_under_a_live_stream_loses_and_repeats_nothing(
    live_server: LiveServer,
) -> None:
    """The receiver drops and resumes many times while a sender streams; it sees each
    message exactly once, in order."""
    receiver, sender = live_server.register(), live_server.register()
    total = 400
    s = await open_ws(live_server, sender)
    await s.recv()
    # The receiver reads without a frame limit (max_queue=None): with websockets' default it
    # stops reading when 16 frames wait, and then its close handshake waits behind the
    # stream for the 10 s close timeout, every reconnect (over the 60 s budget when loaded).
    r = await open_ws(live_server, receiver, max_queue=None)
    cursor = (await r.recv())["last_seq"]
    sent: list[str] = []

    async def stream() -> None:
        for i in range(total):
            sent.append((await s.request({"content": f"n{i}"}, timeout=10))["message"]["id"])
            if i % 7 == 0:
                await asyncio.sleep(0.001)

    producer = asyncio.create_task(stream())
    seen: list[str] = []
    rng = random.Random(7)
    async with asyncio.timeout(60):
        while len(seen) < total:
            budget = rng.randint(5, 60)
            while budget and len(seen) < total:
                frame = await r.recv(timeout=10)
                if is_delivery(frame):
                    seen.append(frame["id"])
                    cursor = frame["seq"]
                    budget -= 1
                elif frame.get("type") == "resumed":
                    cursor = max(cursor, frame["last_seq"])
            if len(seen) < total:
                await r.close()
                r = await open_ws(live_server, receiver, since=cursor, max_queue=None)
    await producer
    await r.close()
    await s.close()
    assert len(seen) == len(set(seen)) == total
    assert seen == sent


async def test_long_replay_is_paced_by_a_small_outbox(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_OUTBOX_SIZE="8")
    me, friend = server.register(), server.register()
    first = await open_ws(server, me)
    cursor = (await first.recv())["last_seq"]
    await first.close()
    f = await open_ws(server, friend)
    for i in range(1200):  # one at a time: the friend's own outbox holds only 8 replies
        await f.request({"content": f"m{i}"})
    back = await open_ws(server, me, since=cursor)
    contents = []
    async with asyncio.timeout(30):
        while True:
            frame = await back.recv()
            if is_delivery(frame):
                contents.append(frame["content"])
            elif frame.get("type") == "resumed":
                break
    assert contents == [f"m{i}" for i in range(1200)]
    assert frame["replayed"] == 1200
    await back.close()
    await f.close()


async def test_unknown_resume_point_gets_resume_gap(live_server: LiveServer) -> None:
    me = live_server.register()
    client = await open_ws(live_server, me, since=10**12)
    hello = await client.recv()
    assert hello["type"] == "hello" and isinstance(hello["last_seq"], int)
    gap = await client.recv()
    assert gap == {
        "type": "resume_gap",
        "requested_seq": 10**12,
        "last_seq": hello["last_seq"],
    }
    await client.close()


async def test_malformed_since_seq_is_refused_at_the_handshake(live_server: LiveServer) -> None:
    me = live_server.register()
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(f"{live_server.ws_url}?api_key={me.api_key}&since_seq=-3")
    assert info.value.response.status_code == 400


async def test_retried_send_with_client_message_id_is_stored_once(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    a, b = await open_ws(live_server, alice), await open_ws(live_server, bob)
    first = await a.request({"content": "once", "client_message_id": "c-1"})
    again = await a.request({"content": "once", "client_message_id": "c-1"})
    assert first["message"] == again["message"]
    got = await b.recv_until(lambda f: is_delivery(f) and f["content"] == "once")
    assert got["id"] == first["message"]["id"]
    await b.expect_silence(0.3, lambda f: is_delivery(f) and f["content"] == "once")
    # Over REST too, and the id space is per sender: bob may use the same id.
    with httpx.Client(base_url=live_server.http_url) as http:
        rest = http.post(
            "/messages",
            json={"content": "once", "client_message_id": "c-1"},
            headers={"X-API-Key": alice.api_key},
        )
        assert rest.status_code == 201 and rest.json()["id"] == first["message"]["id"]
        other = http.post(
            "/messages",
            json={"content": "mine", "client_message_id": "c-1"},
            headers={"X-API-Key": bob.api_key},
        )
        assert other.status_code == 201 and other.json()["id"] != first["message"]["id"]
    await a.close()
    await b.close()


async def test_concurrent_retries_store_one_message(live_server: LiveServer) -> None:
    alice = live_server.register()
    clients = [await open_ws(live_server, alice) for _ in range(4)]
    replies = await asyncio.gather(
        *(c.request({"content": "race", "client_message_id": "same"}) for c in clients)
    )
    assert len({reply["message"]["id"] for reply in replies}) == 1
    for client in clients:
        await client.close()
