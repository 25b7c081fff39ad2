"""Extension frames go only to connections that ask for them with ``?protocol_version=1.1``.

Each test reads a legacy connection's frames up to the reply of a request made after the
event under test: the server queues a push made on the connection's own node before that
reply, so anything it sent is in ``seen`` by then, with no waiting on silence. A push made on
the other node (two-node runs) comes through Redis and may follow that reply, so the tests
first wait for a frame published after the event by the same node. An extended connection
beside it shows the push does happen.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.wsclient import Frame, WsClient, is_delivery


async def frames_until_reply(
    client: WsClient, after: Callable[[Frame], bool] | None = None
) -> list[Frame]:
    """Everything that arrived before the reply to a fresh request, in order; with
    ``after``, the request is made once a frame matching it has arrived."""
    before = len(client.seen)
    if after is not None:
        await client.recv_until(after)
    await client.request({"type": "get_unread_count"})
    return client.seen[before:-1]


async def test_legacy_connection_gets_no_hello_and_no_pushed_counts(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    legacy = await WsClient.connect(live_server.ws_url, bob.api_key, legacy=True)
    extended = await WsClient.connect(live_server.ws_url, bob.api_key)
    assert (await extended.recv())["type"] == "hello"
    assert await frames_until_reply(legacy) == []  # no hello before the first reply

    with httpx.Client(base_url=live_server.http_url) as http:
        sent = http.post(
            "/messages",
            json={"content": "hi", "to_username": bob.username},
            headers={"X-API-Key": alice.api_key},
        ).json()
        read = http.post(f"/messages/{sent['id']}/read", headers={"X-API-Key": bob.api_key})
        assert read.status_code == 204
    pushed = await extended.recv_until(lambda f: f.get("type") == "unread_count")
    assert "request_id" not in pushed
    seen = await frames_until_reply(legacy, lambda f: f.get("id") == sent["id"])
    assert [f["id"] for f in seen if is_delivery(f)] == [sent["id"]]
    assert [f for f in seen if not is_delivery(f)] == []
    for client in (legacy, extended):
        await client.close()


async def test_legacy_connection_gets_typing_but_not_typing_stopped(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    a = await WsClient.connect(live_server.ws_url, alice.api_key)
    legacy = await WsClient.connect(live_server.ws_url, bob.api_key, legacy=True)
    extended = await WsClient.connect(live_server.ws_url, bob.api_key)
    await a.send({"type": "typing", "to_username": bob.username})
    for client in (legacy, extended):
        typing = await client.recv_until(lambda f: f.get("type") == "typing")
        assert typing["username"] == alice.username
    await a.request({"content": "done typing", "to_username": bob.username})
    stopped = await extended.recv_until(lambda f: f.get("type") == "typing_stopped")
    assert stopped["username"] == alice.username
    # Published by alice's node after the message and its typing_stopped: once it is here,
    # so is everything published before it.
    await a.request({"content": "after", "to_username": bob.username})
    seen = await frames_until_reply(legacy, lambda f: f.get("content") == "after")
    assert [f["content"] for f in seen if is_delivery(f)] == ["done typing", "after"]
    assert [f for f in seen if not is_delivery(f)] == []
    for client in (a, legacy, extended):
        await client.close()


async def test_legacy_resume_replays_messages_without_extension_frames(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    a = await WsClient.connect(live_server.ws_url, alice.api_key)
    first = (await a.request({"content": "one", "to_username": bob.username}))["message"]
    second = (await a.request({"content": "two", "to_username": bob.username}))["message"]
    legacy = await WsClient.connect(
        live_server.ws_url, bob.api_key, legacy=True, query=f"&since_seq={first['seq'] - 1}"
    )
    seen = await frames_until_reply(legacy)
    assert [f["id"] for f in seen] == [first["id"], second["id"]]
    for client in (a, legacy):
        await client.close()


@pytest.mark.parametrize("value", ["x", "1.1.1", "1.", "١.١", "9" * 50, ""])
async def test_a_malformed_protocol_version_is_refused_at_the_handshake(
    live_server: LiveServer, value: str
) -> None:
    bob = live_server.register()
    url = f"{live_server.ws_url}?api_key={bob.api_key}&protocol_version={value}"
    if value == "":
        # Empty means "not asked": a legacy connection.
        async with websockets.connect(url) as ws:
            assert ws.protocol.state.name == "OPEN"
        return
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(url)
    assert info.value.response.status_code == 400
    assert b"validation_error" in info.value.response.body


@pytest.mark.parametrize(
    ("value", "extended"), [("1", False), ("1.0", False), ("1.1", True), ("2", True)]
)
async def test_versions_from_1_1_up_get_the_extensions(
    live_server: LiveServer, value: str, extended: bool
) -> None:
    bob = live_server.register()
    client = WsClient(
        await websockets.connect(
            f"{live_server.ws_url}?api_key={bob.api_key}&protocol_version={value}"
        )
    )
    seen = await frames_until_reply(client)
    assert [f["type"] for f in seen] == (["hello"] if extended else [])
    await client.close()
