"""``presence`` frames: others' extended connections learn when a user comes online (first
connection) and goes offline (last connection closed); legacy connections never get one."""

from __future__ import annotations

from tests.conftest import LiveServer
from tests.wsclient import Frame, WsClient


def presence_of(username: str, online: bool):  # type: ignore[no-untyped-def]
    def match(frame: Frame) -> bool:
        return (
            frame.get("type") == "presence"
            and frame.get("username") == username
            and frame.get("online") is online
        )

    return match


async def test_presence_pushed_on_first_connect_and_last_disconnect(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    watcher = await WsClient.connect(live_server.ws_url, bob.api_key)
    legacy = await WsClient.connect(live_server.ws_url, bob.api_key, legacy=True)
    first = await WsClient.connect(live_server.ws_url, alice.api_key)
    came = await watcher.recv_until(presence_of(alice.username, True))
    assert came["user_id"] == alice.id
    second = await WsClient.connect(live_server.ws_url, alice.api_key)
    await second.recv_until(lambda f: f.get("type") == "hello")
    await first.close()
    # Alice is still online through her second connection: closing the first announces
    # nothing; closing the last announces her offline, once.
    await second.close()
    await watcher.recv_until(presence_of(alice.username, False))
    await watcher.request({"type": "get_unread_count"})  # anything queued before is in `seen`
    presence = [f["online"] for f in watcher.seen if f.get("type") == "presence"]
    assert presence == [True, False]
    # The legacy connection got neither frame (anything queued for it precedes this reply).
    await legacy.request({"type": "get_unread_count"})
    assert [f for f in legacy.seen if f.get("type") == "presence"] == []
    for client in (watcher, legacy):
        await client.close()


async def test_own_connections_get_no_presence_of_self(live_server: LiveServer) -> None:
    alice = live_server.register()
    a = await WsClient.connect(live_server.ws_url, alice.api_key)
    b = await WsClient.connect(live_server.ws_url, alice.api_key)
    await b.close()
    await a.request({"type": "get_unread_count"})
    assert [f for f in a.seen if f.get("type") == "presence"] == []
    await a.close()
