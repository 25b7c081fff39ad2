"""Every connection ends, and none can hold the server from the others (DESIGN.md guarantee 4;
issue 7 defects 1, 3, 4 and 12).

Real servers, real sockets: a flooding client, a client that leaves in the middle of its
resume replay, a peer that completes the handshake and then never reads again, and more
connections than the caps allow.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import Account, LiveServer
from tests.e2e.test_metrics import scrape
from tests.waiting import eventually
from tests.wsclient import WsClient, ws_url_for

TOKEN = "lifecycle-metrics"


def online(server: LiveServer, viewer: Account) -> set[str]:
    resp = httpx.get(f"{server.http_url}/users/online", headers={"X-API-Key": viewer.api_key})
    assert resp.status_code == 200, resp.text
    return {user["username"] for user in resp.json()}


def connections(server: LiveServer) -> float:
    return scrape(server, TOKEN)["tbc_connections"]


async def wait_gone(server: LiveServer, who: Account, viewer: Account, timeout: float) -> None:
    """``who`` is offline and the server holds no connection at all any more."""
    await eventually(
        lambda: who.username not in online(server, viewer), timeout, f"{who.username} stayed"
    )
    await eventually(lambda: connections(server) == 0, timeout, "a connection stayed open")


async def fill_history(server: LiveServer, author: Account, count: int, size: int) -> None:
    """``count`` room messages of ``size`` characters, pipelined over one socket."""
    ws = await WsClient.connect(server.ws_url, author.api_key)
    pad = "x" * size
    window = 100
    for start in range(0, count, window):
        ids = [f"fill{i}" for i in range(start, min(count, start + window))]
        for rid in ids:
            await ws.send({"type": "message", "content": f"{rid} {pad}", "request_id": rid})
        waiting = set(ids)
        while waiting:
            frame = await ws.recv(30)
            assert frame.get("type") != "error", frame
            waiting.discard(frame.get("request_id"))
    await ws.close()


class DeafPeer:
    """A raw WebSocket client that completes the handshake and then never reads again.

    Its receive buffer is tiny, so the server's writes back up after a few kilobytes. It never
    sends a close frame either: only the server can end this connection.
    """

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:  # the 101 response, and not a byte more on purpose
            chunk = self.sock.recv(1)
            assert chunk, "the server closed during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def dropped(self) -> bool:
        """Whether the server has cut the socket off (reset it): a graceful close could not
        even send its FIN past the data this peer never read."""
        state = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        return state != _TCP_ESTABLISHED

    def close(self) -> None:
        self.sock.close()


_TCP_ESTABLISHED = 1  # tcpi_state in Linux's struct tcp_info


@pytest.fixture
def deaf_peer() -> Iterator[Callable[[int, str], DeafPeer]]:
    """``deaf_peer(port, path)``; every peer made is closed at the end, pass or fail."""
    made: list[DeafPeer] = []

    def make(port: int, path: str) -> DeafPeer:
        made.append(DeafPeer(port, path))
        return made[-1]

    yield make
    for peer in made:
        peer.close()


def path_for(account: Account, query: str = "") -> str:
    return f"/ws?api_key={account.api_key}&protocol_version=1.1{query}"


# Defect 1: one client starves everyone.


async def test_frames_beyond_the_budget_are_refused_with_their_request_id(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_WS_FRAME_RATE="5", TOKEN_BOWL_WS_FRAME_BURST="20")
    me = server.register()
    ws = await WsClient.connect(server.ws_url, me.api_key)
    await ws.recv()  # hello
    rids = [f"p{i}" for i in range(30)]
    for rid in rids:  # faster than 5 a second, and within the 20 refusals that close
        await ws.send({"type": "ping", "request_id": rid})
    replies: dict[str, dict[str, object]] = {}
    while len(replies) < len(rids):
        frame = await ws.recv(10)
        if frame.get("request_id") in rids:
            assert frame["request_id"] not in replies, f"two replies to {frame}"
            replies[frame["request_id"]] = frame
    refused = [rid for rid in rids if replies[rid].get("type") == "error"]
    assert refused, "no frame was refused"
    assert all(replies[rid]["code"] == "rate_limited" for rid in refused)
    assert len(refused) <= len(rids) - 20, "the burst was not honoured"
    # The connection stays usable: once the budget refills, a ping is answered again.
    async with asyncio.timeout(20):
        while True:
            reply = await ws.request({"type": "ping"}, timeout=10)
            if reply["type"] == "pong":
                break
            assert reply["code"] == "rate_limited"
            await asyncio.sleep(0.25)  # back off, as a client told "rate_limited" should
    await ws.close()


async def test_a_flood_is_cut_off_and_everyone_else_is_served_meanwhile(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_WS_FRAME_RATE="50", TOKEN_BOWL_WS_FRAME_BURST="100")
    flooder, other, watcher = (server.register() for _ in range(3))
    flood = await websockets.connect(ws_url_for(server.ws_url, flooder.api_key))
    frame = json.dumps({"type": "typing"})
    errors = 0

    async def drain() -> None:  # read the flooder's error frames, count them
        nonlocal errors
        with contextlib.suppress(ConnectionClosed):
            async for raw in flood:
                if json.loads(raw).get("code") == "rate_limited":
                    errors += 1

    reader = asyncio.create_task(drain())
    sent = 0
    deadline = time.monotonic() + 30
    with contextlib.suppress(ConnectionClosed):
        while sent < 200_000 and time.monotonic() < deadline:
            await flood.send(frame)
            sent += 1
            # send() need not yield: let the reader see the server's close frame.
            await asyncio.sleep(0)
    with contextlib.suppress(TimeoutError):  # the close frame, if the server sent one
        await asyncio.wait_for(reader, 10)
    assert flood.close_code == 4002, f"not closed for flooding ({flood.close_code}, {sent} sent)"
    # Error frames are bounded: at most one per refused frame, and at most burst + a little
    # forgiven refusals before the close.
    assert 0 < errors <= 100 + 50, errors

    # Meanwhile-proof with the budget lifted: a flood that is never cut off (only the read
    # loop's yield protects the others) does not keep another user from connecting and
    # sending.
    lifted = make_server(TOKEN_BOWL_WS_FRAME_RATE="1000000", TOKEN_BOWL_WS_FRAME_BURST="1000000")
    flooder, other = lifted.register(), lifted.register()
    flood = await websockets.connect(ws_url_for(lifted.ws_url, flooder.api_key))
    stop = asyncio.Event()

    async def stream() -> int:
        count = 0
        end = time.monotonic() + 60
        while not stop.is_set() and count < 2_000_000 and time.monotonic() < end:
            await flood.send(frame)
            count += 1
            await asyncio.sleep(0)  # send() need not yield: let this test's other user run
        return count

    streaming = asyncio.create_task(stream())
    ws = await asyncio.wait_for(WsClient.connect(lifted.ws_url, other.api_key), 30)
    for i in range(3):
        reply = await ws.request({"type": "message", "content": f"hi {i}"}, timeout=30)
        assert reply["type"] == "message_sent"
        assert not streaming.done(), "the flood ended before the sends were acknowledged"
    stop.set()
    assert await asyncio.wait_for(streaming, 30) > 0
    await ws.close()
    await flood.close()
    del watcher


# Defect 3: a client that leaves in the middle of its resume replay.


@pytest.mark.parametrize("leaves", [True, False], ids=["leaves", "stays-but-never-reads"])
async def test_a_client_gone_quiet_mid_replay_is_freed(
    make_server: Callable[..., LiveServer],
    deaf_peer: Callable[[int, str], DeafPeer],
    leaves: bool,
) -> None:
    server = make_server(
        TOKEN_BOWL_METRICS_TOKEN=TOKEN,
        TOKEN_BOWL_HEARTBEAT_INTERVAL="0.5",
        TOKEN_BOWL_HEARTBEAT_TIMEOUT="3",
        TOKEN_BOWL_WS_CLOSE_TIMEOUT="1",
    )
    me, author = server.register(), server.register()
    await fill_history(server, author, 2000, 4000)  # ~8 MB to replay
    peer = deaf_peer(server.proc.port, path_for(me, "&since_seq=0"))
    # The replay is under way and stuck on the peer: it is online, its connection open.
    await eventually(lambda: me.username in online(server, author), 10, "never came online")
    await eventually(lambda: connections(server) == 1, 10, "connection not counted")
    if leaves:
        peer.close()
        await wait_gone(server, me, author, 15)
    else:
        # It never reads and never sends: the heartbeat gives up on it, and the close must
        # finish although the socket takes nothing more.
        await wait_gone(server, me, author, 20)
        await eventually(peer.dropped, 10, "the server never let go of the socket")
        peer.close()
    # The server still serves this user afterwards.
    again = await WsClient.connect(server.ws_url, me.api_key)
    assert (await again.recv())["type"] == "hello"
    await again.close()


# Defect 4: a peer that never reads and never closes.


@pytest.mark.single_node(reason="reads the metrics of the process that holds the socket")
async def test_a_peer_that_never_reads_is_cut_off_and_forgotten(
    make_server: Callable[..., LiveServer], deaf_peer: Callable[[int, str], DeafPeer]
) -> None:
    server = make_server(
        TOKEN_BOWL_METRICS_TOKEN=TOKEN,
        TOKEN_BOWL_OUTBOX_SIZE="64",
        TOKEN_BOWL_WS_CLOSE_TIMEOUT="1",
    )
    deaf, author = server.register(), server.register()
    peer = deaf_peer(server.proc.port, path_for(deaf))
    await eventually(lambda: deaf.username in online(server, author), 10, "never came online")
    ws = await WsClient.connect(server.ws_url, author.api_key)
    pad = "y" * 4000
    sent = 0
    deadline = time.monotonic() + 60
    # Flood it until it is gone (bounded in count and time); the author's own replies are
    # read as they come, so only the deaf peer falls behind.
    while deaf.username in online(server, author):
        assert sent < 3000 and time.monotonic() < deadline, "the deaf peer was never dropped"
        for _ in range(20):
            reply = await ws.request({"type": "message", "content": f"{sent} {pad}"}, 30)
            assert reply["type"] == "message_sent", reply
            sent += 1
    await eventually(lambda: connections(server) == 1, 10, "the deaf connection stayed open")
    await eventually(peer.dropped, 10, "the server never let go of the socket")
    assert scrape(server, TOKEN)["tbc_slow_consumer_closes_total"] >= 1
    await ws.close()
    await eventually(lambda: connections(server) == 0, 10, "a connection stayed open")
    peer.close()


# Defect 12: caps on connections per user and per address.


async def refused_status(server: LiveServer, account: Account) -> tuple[int, dict[str, object]]:
    with pytest.raises(InvalidStatus) as caught:
        await websockets.connect(ws_url_for(server.ws_url, account.api_key))
    response = caught.value.response
    return response.status_code, json.loads(response.body or b"{}")


@pytest.mark.single_node(reason="the caps are per process")
async def test_connections_are_capped_per_user_and_per_address(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(
        TOKEN_BOWL_WS_MAX_CONNECTIONS_PER_USER="2",
        TOKEN_BOWL_WS_MAX_CONNECTIONS_PER_ADDRESS="3",
    )
    alice, bob = server.register(), server.register()
    a1 = await WsClient.connect(server.ws_url, alice.api_key)
    a2 = await WsClient.connect(server.ws_url, alice.api_key)
    status, body = await refused_status(server, alice)
    assert status == 429 and body["code"] == "too_many_connections", body
    assert "user" in str(body["detail"])

    b1 = await WsClient.connect(server.ws_url, bob.api_key)  # three from 127.0.0.1
    status, body = await refused_status(server, bob)  # bob has one: the address is full
    assert status == 429 and body["code"] == "too_many_connections", body
    assert "address" in str(body["detail"])

    # A closed connection gives its slot back.
    await a2.close()

    async def reconnects() -> WsClient | None:
        try:
            return await WsClient.connect(server.ws_url, alice.api_key)
        except InvalidStatus:
            return None

    async with asyncio.timeout(10):
        while (a3 := await reconnects()) is None:
            await asyncio.sleep(0.05)
    assert (await a3.recv())["type"] == "hello"
    for ws in (a1, a3, b1):
        await ws.close()
