"""``?own_messages=1``: a connection that asks gets a copy of each message its user sends
from anywhere (another tab, another device, REST), with the sender's client_message_id;
nobody else's frames change, and connections that did not ask (our SDK, legacy clients)
never see their own messages."""

from __future__ import annotations

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.wsclient import Frame, WsClient, is_delivery

OWN = "&own_messages=1"


def content_is(text: str):  # type: ignore[no-untyped-def]
    def match(frame: Frame) -> bool:
        return is_delivery(frame) and frame["content"] == text

    return match


async def test_own_messages_reach_the_connections_that_asked_and_no_other(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    tab1 = await WsClient.connect(live_server.ws_url, alice.api_key, query=OWN)
    tab2 = await WsClient.connect(live_server.ws_url, alice.api_key, query=OWN)
    plain = await WsClient.connect(live_server.ws_url, alice.api_key)
    legacy = await WsClient.connect(live_server.ws_url, alice.api_key, legacy=True, query=OWN)
    watcher = await WsClient.connect(live_server.ws_url, bob.api_key)
    try:
        reply = await tab1.request(
            {"type": "message", "content": "from tab one", "client_message_id": "c-1"}
        )
        stored = reply["message"]
        # The sending tab's copy came before the reply (it is published before the reply
        # is sent), so it is among the frames request() went past.
        copies = [f for f in tab1.seen if content_is("from tab one")(f)]
        copies.append(await tab2.recv_until(content_is("from tab one")))
        assert copies == [{**stored, "client_message_id": "c-1"}] * 2
        # Everyone else gets the usual delivery, without Alice's client id.
        seen = await watcher.recv_until(content_is("from tab one"))
        assert seen == stored

        # A DM sent over REST, without a client id: both tabs get it, Bob gets it as before.
        with httpx.Client(base_url=live_server.http_url) as http:
            resp = http.post(
                "/messages",
                json={"content": "a DM from the laptop", "to_username": bob.username},
                headers={"X-API-Key": alice.api_key},
            )
            assert resp.status_code == 201
            dm = resp.json()
        for tab in (tab1, tab2):
            assert await tab.recv_until(content_is("a DM from the laptop")) == dm
        assert await watcher.recv_until(content_is("a DM from the laptop")) == dm

        # The connections that did not ask (the SDK's kind, and a legacy one even though it
        # asked) never got Alice's messages: the first delivery they see is Bob's.
        await watcher.request({"type": "message", "content": "marker"})
        for other in (plain, legacy):
            first = await other.recv_until(is_delivery)
            assert first["content"] == "marker", first
    finally:
        for client in (tab1, tab2, plain, legacy, watcher):
            await client.close()


async def test_own_copies_reach_a_resumed_connection_in_order(live_server: LiveServer) -> None:
    """A resumed connection gets its replay (others' messages only, as upstream delivery),
    then own copies and others' messages live, in the order they were sent."""
    alice, bob = live_server.register(), live_server.register()
    with httpx.Client(base_url=live_server.http_url) as http:
        first = http.post(
            "/messages", json={"content": "before"}, headers={"X-API-Key": bob.api_key}
        ).json()
        tab = await WsClient.connect(
            live_server.ws_url, alice.api_key, query=f"{OWN}&since_seq={first['seq'] - 1}"
        )
        try:
            await tab.recv_until(lambda f: f.get("type") == "resumed")
            http.post("/messages", json={"content": "mine"}, headers={"X-API-Key": alice.api_key})
            http.post("/messages", json={"content": "his"}, headers={"X-API-Key": bob.api_key})
            await tab.recv_until(content_is("his"))
            assert [f["content"] for f in tab.seen if is_delivery(f)] == ["before", "mine", "his"]
        finally:
            await tab.close()


@pytest.mark.parametrize("value", ["yes", "2", "TRUE "])
async def test_a_bad_own_messages_value_is_refused_at_the_handshake(
    live_server: LiveServer, value: str
) -> None:
    alice = live_server.register()
    url = f"{live_server.ws_url}?api_key={alice.api_key}&protocol_version=1.1&own_messages={value}"
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(url)
    assert info.value.response.status_code == 400
    assert b"validation_error" in info.value.response.body
