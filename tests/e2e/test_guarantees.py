"""DESIGN.md section 3: each test here fails if its guarantee breaks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.wsclient import WsClient, is_delivery


def history_ids(server: LiveServer, api_key: str, path: str = "/messages") -> set[str]:
    """Every message id of a history (``path``: the room's, or ``/messages/direct``), page
    by page."""
    ids: set[str] = set()
    offset = 0
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": api_key}) as http:
        while True:
            page = http.get(path, params={"limit": 1000, "offset": offset}).json()
            ids |= {m["id"] for m in page["messages"]}
            if not page["pagination"]["has_more"]:
                return ids
            offset += len(page["messages"])


async def test_1_acknowledged_messages_survive_sigkill(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    alice = server.register()
    client = await WsClient.connect(server.ws_url, alice.api_key)
    acked: list[str] = []

    async def sender() -> None:
        for i in range(10_000):
            await client.send({"content": f"durable {i}", "request_id": i})

    async def collect() -> None:
        while True:
            frame = await client.recv()
            if frame.get("type") == "message_sent":
                acked.append(frame["message"]["id"])
                if len(acked) == 300:
                    server.proc.kill()  # SIGKILL while sends are still in flight

    tasks = [asyncio.create_task(sender()), asyncio.create_task(collect())]
    with pytest.raises((websockets.ConnectionClosed, TimeoutError, OSError)):
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks)
    for task in tasks:
        task.cancel()
    assert len(acked) >= 300

    server.proc.start()
    stored = history_ids(server, alice.api_key)
    lost = [message_id for message_id in acked if message_id not in stored]
    assert lost == []


def _small_buffer_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_4_a_slow_consumer_is_cut_off_and_never_stalls_the_others(
    make_server: Callable[..., LiveServer],
) -> None:
    # The slow client reads again only after all 600 sends; the server resets a socket that
    # has not taken its close frame within the close timeout, so give it long enough here.
    server = make_server(TOKEN_BOWL_OUTBOX_SIZE="16", TOKEN_BOWL_WS_CLOSE_TIMEOUT="120")
    sender_acct, fast_acct, slow_acct = (server.register() for _ in range(3))
    sender = await WsClient.connect(server.ws_url, sender_acct.api_key)
    fast = await WsClient.connect(server.ws_url, fast_acct.api_key)
    # The slow client stops reading: a tiny receive buffer and a one-frame library queue.
    slow_conn = await websockets.connect(
        f"{server.ws_url}?api_key={slow_acct.api_key}",
        sock=_small_buffer_socket(server.proc.port),
        max_queue=1,
    )
    total = 600
    content = "x" * 8000
    received: set[str] = set()

    async def read_fast() -> None:
        while len(received) < total:
            frame = await fast.recv(timeout=10)
            if is_delivery(frame):
                received.add(frame["id"])

    reader = asyncio.create_task(read_fast())
    for i in range(total):
        reply = await sender.request({"content": f"{i} {content}"}, timeout=10)
        assert reply["type"] == "message_sent"
    async with asyncio.timeout(20):
        await reader
    assert len(received) == total

    # The server gave up on the slow connection with the documented code (4001) ...
    with pytest.raises(websockets.ConnectionClosed) as info:
        async with asyncio.timeout(20):
            while True:
                await slow_conn.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4001
    # ... and its user went offline, while everyone else is still served.
    online = httpx.get(
        f"{server.http_url}/users/online", headers={"X-API-Key": fast_acct.api_key}
    ).json()
    assert slow_acct.username not in {u["username"] for u in online}
    assert (await fast.request({"type": "get_unread_count"}))["type"] == "unread_count"
    await sender.close()
    await fast.close()


async def test_5_unread_counts_stay_exact_under_concurrent_sends_and_reads(
    live_server: LiveServer,
) -> None:
    reader = live_server.register()
    senders = [live_server.register() for _ in range(4)]
    r = await WsClient.connect(live_server.ws_url, reader.api_key)
    await r.request({"type": "mark_all_read"})
    clients = [await WsClient.connect(live_server.ws_url, s.api_key) for s in senders]

    async def send_many(client: WsClient, n: int, dm: bool) -> list[str]:
        ids = []
        for i in range(n):
            frame = {"content": f"m{i}", **({"to_username": reader.username} if dm else {})}
            ids.append((await client.request(frame, timeout=10))["message"]["id"])
        return ids

    async def mark_some() -> int:
        marked = 0
        for _ in range(40):
            unread = await r.request({"type": "get_unread_messages", "limit": 5})
            for message in unread["messages"]:
                await r.request({"type": "mark_read", "message_id": message["id"]})
                marked += 1
        return marked

    results = await asyncio.gather(
        send_many(clients[0], 80, dm=False),
        send_many(clients[1], 80, dm=False),
        send_many(clients[2], 70, dm=True),
        send_many(clients[3], 70, dm=True),
        mark_some(),
    )
    count = await r.request({"type": "get_unread_count"})
    # Ground truth from the lists, which are computed from the messages themselves.
    room = await r.request({"type": "get_unread_messages", "limit": 1000})
    direct = await r.request({"type": "get_unread_direct_messages", "limit": 1000})
    assert count["unread_room_messages"] == len(room["messages"])
    assert count["unread_direct_messages"] == len(direct["messages"]) == 140
    assert count["total_unread"] == 160 + 140 - results[4]
    for client in (r, *clients):
        await client.close()


@pytest.mark.sqlite_only
async def test_9_api_keys_are_stored_hashed_and_never_logged(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    alice = server.register()
    client = await WsClient.connect(server.ws_url, alice.api_key)
    await client.request({"type": "get_unread_count"})
    await client.close()
    httpx.get(f"{server.http_url}/messages", params={"api_key": alice.api_key})
    server.proc.stop()
    at_rest = b"".join(
        path.read_bytes() for path in server.proc.data_dir.glob("chat.db*") if path.is_file()
    )
    assert at_rest, "database files not found"
    assert alice.api_key.encode() not in at_rest
    log = server.proc.log()
    assert "/ws?api_key=[redacted]" in log
    assert alice.api_key not in log


async def test_9_sends_beyond_the_rate_limit_get_429_and_an_error_frame(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_SEND_RATE="0.5", TOKEN_BOWL_SEND_BURST="3")
    alice, bob = server.register(), server.register()
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": alice.api_key}) as http:
        statuses = [http.post("/messages", json={"content": f"m{i}"}).status_code for i in range(4)]
        assert statuses == [201, 201, 201, 429]
        limited = http.post("/messages", json={"content": "again"})
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
    client = await WsClient.connect(server.ws_url, bob.api_key)
    replies = [await client.request({"content": f"w{i}"}) for i in range(4)]
    assert [r["type"] for r in replies] == ["message_sent"] * 3 + ["error"]
    assert replies[3]["code"] == "rate_limited"
    # The connection stays usable, and other users are not limited by bob's bucket.
    assert (await client.request({"type": "get_unread_count"}))["type"] == "unread_count"
    await client.close()


def test_9_registrations_are_rate_limited_per_address(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_REGISTER_RATE="0.01", TOKEN_BOWL_REGISTER_BURST="3")
    replies = [
        httpx.post(f"{server.http_url}/register", json={"username": f"r{i}"}) for i in range(4)
    ]
    assert [r.status_code for r in replies] == [201, 201, 201, 429]
    assert replies[3].json()["code"] == "rate_limited" and "Retry-After" in replies[3].headers
    # The refused attempt created nothing.
    key = replies[0].json()["api_key"]
    users = httpx.get(f"{server.http_url}/users", headers={"X-API-Key": key}).json()
    assert sorted(u["username"] for u in users if u["role"] != "admin") == ["r0", "r1", "r2"]
    # Bots are accounts too: creating them draws from the same bucket, so they are no way
    # around it, and the refused bot does not exist.
    bot = httpx.post(f"{server.http_url}/bots", json={"username": "b0"}, headers={"X-API-Key": key})
    assert bot.status_code == 429, bot.text
    assert bot.json()["code"] == "rate_limited"
    mine = httpx.get(f"{server.http_url}/bots/me", headers={"X-API-Key": key}).json()
    assert mine == []
