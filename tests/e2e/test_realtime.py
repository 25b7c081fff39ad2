"""Typing, presence and heartbeat, on servers with short timers so nothing waits long."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.wsclient import WsClient, is_delivery


@pytest.fixture
def fast_server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """Typing expires after 0.6 s."""
    return make_server(TOKEN_BOWL_TYPING_TIMEOUT="0.6", TOKEN_BOWL_TYPING_RELAY_INTERVAL="0.2")


@pytest.fixture
def heartbeat_server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """Pings every 0.3 s; a connection silent for 1 s is stale."""
    return make_server(TOKEN_BOWL_HEARTBEAT_INTERVAL="0.3", TOKEN_BOWL_HEARTBEAT_TIMEOUT="1.0")


def is_typing(frame: dict[str, object]) -> bool:
    return frame.get("type") == "typing"


def is_stop(frame: dict[str, object]) -> bool:
    return frame.get("type") == "typing_stopped"


async def keepalive(client: WsClient, seconds: float) -> None:
    """Answer the server's pings for a while, as a live client does."""
    async with asyncio.timeout(seconds + 1):
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            await client.send({"type": "pong"})
            await asyncio.sleep(0.2)


async def test_room_typing_goes_to_everyone_else_and_expires(fast_server: LiveServer) -> None:
    alice, bob, carol = (fast_server.register() for _ in range(3))
    a = await WsClient.connect(fast_server.ws_url, alice.api_key)
    b = await WsClient.connect(fast_server.ws_url, bob.api_key)
    c = await WsClient.connect(fast_server.ws_url, carol.api_key)
    await a.send({"type": "typing"})
    for other in (b, c):
        frame = await other.recv_until(is_typing)
        assert frame["username"] == alice.username and frame["to_username"] is None
    await a.expect_silence(0.2, is_typing)
    # Not renewed: the server announces the stop by itself.
    for other in (b, c):
        stop = await other.recv_until(is_stop, timeout=3)
        assert stop == {"type": "typing_stopped", "username": alice.username, "to_username": None}
    for client in (a, b, c):
        await client.close()


async def test_dm_typing_reaches_only_the_recipient_and_stops_on_send(
    fast_server: LiveServer,
) -> None:
    alice, bob, carol = (fast_server.register() for _ in range(3))
    a = await WsClient.connect(fast_server.ws_url, alice.api_key)
    b = await WsClient.connect(fast_server.ws_url, bob.api_key)
    c = await WsClient.connect(fast_server.ws_url, carol.api_key)
    await a.send({"type": "typing", "to_username": bob.username})
    frame = await b.recv_until(is_typing)
    assert frame["username"] == alice.username and frame["to_username"] == bob.username
    await a.send({"content": "done typing", "to_username": bob.username})
    stop = await b.recv_until(is_stop)
    assert stop["to_username"] == bob.username
    # The stop came with the message, not from expiry: the delivery was seen first.
    assert any(is_delivery(f) and f["content"] == "done typing" for f in b.seen)
    await c.expect_silence(0.8, lambda f: is_typing(f) or is_stop(f))
    for client in (a, b, c):
        await client.close()


async def test_renewals_keep_typing_alive_and_disconnect_stops_it(
    fast_server: LiveServer,
) -> None:
    alice, bob = fast_server.register(), fast_server.register()
    a = await WsClient.connect(fast_server.ws_url, alice.api_key)
    b = await WsClient.connect(fast_server.ws_url, bob.api_key)
    for _ in range(6):  # 1.2 s of renewals, twice the 0.6 s timeout
        await a.send({"type": "typing"})
        await asyncio.sleep(0.2)
    assert not any(is_stop(f) for f in b.seen)
    await b.recv_until(is_typing)
    await b.expect_silence(0.3, is_stop)
    await a.close()
    stop = await b.recv_until(is_stop, timeout=0.5)  # well before the expiry would fire
    assert stop["username"] == alice.username
    await b.close()


async def test_presence_counts_every_connection(fast_server: LiveServer) -> None:
    alice, bob = fast_server.register(), fast_server.register()

    def online() -> list[str]:
        resp = httpx.get(f"{fast_server.http_url}/users/online", headers={"X-API-Key": bob.api_key})
        return [u["username"] for u in resp.json()]

    first = await WsClient.connect(fast_server.ws_url, alice.api_key)
    second = await WsClient.connect(fast_server.ws_url, alice.api_key)
    assert online().count(alice.username) == 1
    await first.close()
    await asyncio.sleep(0.1)
    assert alice.username in online()
    await second.close()
    async with asyncio.timeout(2):
        while alice.username in online():
            await asyncio.sleep(0.05)


async def test_server_pings_and_closes_silent_connections(heartbeat_server: LiveServer) -> None:
    alice, bob = heartbeat_server.register(), heartbeat_server.register()
    silent = await WsClient.connect(heartbeat_server.ws_url, alice.api_key)
    lively = await WsClient.connect(heartbeat_server.ws_url, bob.api_key)
    ping = await lively.recv_until(lambda f: f.get("type") == "ping")
    assert isinstance(ping["timestamp"], str) and ping["timestamp"].endswith("+00:00")
    await keepalive(lively, 2.0)
    # The silent one sent nothing for longer than the 1 s stale timeout: closed with 1001.
    with pytest.raises(websockets.ConnectionClosed) as info:
        await silent.recv_until(lambda f: False, timeout=3)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    # The lively one is still served.
    assert (await lively.request({"type": "get_unread_count"}))["type"] == "unread_count"
    await lively.close()
