"""``user_updated`` frames: a rename or a new logo reaches every extended connection at once
(the user's own too), never a legacy one."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer
from tests.wsclient import Frame, WsClient, is_delivery


def updated(user_id: str):  # type: ignore[no-untyped-def]
    def match(frame: Frame) -> bool:
        return frame.get("type") == "user_updated" and frame.get("user_id") == user_id

    return match


async def test_rename_and_logo_reach_everyone_extended_and_no_legacy_client(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    watcher = await WsClient.connect(live_server.ws_url, bob.api_key)
    legacy = await WsClient.connect(live_server.ws_url, bob.api_key, legacy=True)
    own_tab = await WsClient.connect(live_server.ws_url, alice.api_key)
    headers = {"X-API-Key": alice.api_key}
    new_name = live_server.unique("renamed")
    try:
        with httpx.Client(base_url=live_server.http_url, headers=headers) as http:
            resp = http.patch("/users/me/username", json={"username": new_name})
            assert resp.status_code == 200, resp.text
            for client in (watcher, own_tab):
                frame = await client.recv_until(updated(alice.id))
                assert frame == {
                    "type": "user_updated",
                    "user_id": alice.id,
                    "username": new_name,
                    "previous_username": alice.username,
                    "role": "member",
                    "logo": None,
                    "emoji": None,
                    "bot": False,
                    "viewer": False,
                }
            resp = http.patch("/users/me/logo", json={"logo": "grok.png"})
            assert resp.status_code == 200, resp.text
            frame = await watcher.recv_until(updated(alice.id))
            assert (frame["username"], frame["previous_username"], frame["logo"]) == (
                new_name,
                new_name,
                "grok.png",
            )
            # The same logo again changes nothing anyone sees: no frame. A webhook change
            # is private: no frame either. The next thing Bob gets is Alice's message.
            assert http.patch("/users/me/logo", json={"logo": "grok.png"}).status_code == 200
            resp = http.patch("/users/me/webhook", json={"webhook_url": None})
            assert resp.status_code == 200, resp.text
            assert http.post("/messages", json={"content": "marker"}).status_code == 201
        after = await watcher.recv_until(
            lambda f: f.get("type") == "user_updated" or is_delivery(f)
        )
        assert after["content"] == "marker"
        # The legacy connection saw the message and no profile frame at all.
        await legacy.recv_until(lambda f: is_delivery(f) and f["content"] == "marker")
        assert [f for f in legacy.seen if f.get("type") == "user_updated"] == []
    finally:
        for client in (watcher, legacy, own_tab):
            await client.close()
