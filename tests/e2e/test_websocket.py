"""The WebSocket protocol against a real server: every client frame of PROTOCOL.md 5.3."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.conftest import Account, LiveServer
from tests.wsclient import WsClient, is_delivery


async def connect(server: LiveServer, account: Account) -> WsClient:
    return await WsClient.connect(server.ws_url, account.api_key)


def rest(server: LiveServer, account: Account) -> httpx.Client:
    return httpx.Client(base_url=server.http_url, headers={"X-API-Key": account.api_key})


async def test_room_message_reaches_everyone_but_the_senders_connections(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    a1, a2, b = (
        await connect(live_server, alice),
        await connect(live_server, alice),
        await connect(live_server, bob),
    )
    sent = await a1.request({"type": "message", "content": "hello room"})
    assert sent["type"] == "message_sent" and sent["status"] == "sent"
    stored = sent["message"]
    assert stored["content"] == "hello room" and stored["message_type"] == "room"
    assert isinstance(stored["seq"], int) and stored["from_user_id"] == alice.id

    got = await b.recv_until(lambda f: is_delivery(f) and f["id"] == stored["id"])
    assert "type" not in got and got["from_username"] == alice.username
    assert got["to_username"] is None and got["seq"] == stored["seq"]
    await a2.expect_silence(0.3, lambda f: f.get("id") == stored["id"])
    for client in (a1, a2, b):
        await client.close()


async def test_typeless_legacy_send_is_a_message(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    a, b = await connect(live_server, alice), await connect(live_server, bob)
    await a.send({"content": "legacy form"})
    sent = await a.recv_until(lambda f: f.get("type") == "message_sent")
    assert sent["message"]["content"] == "legacy form"
    await b.recv_until(lambda f: is_delivery(f) and f["content"] == "legacy form")
    await a.close()
    await b.close()


async def test_direct_message_reaches_only_the_recipient(live_server: LiveServer) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    a, b1, b2, c = (
        await connect(live_server, alice),
        await connect(live_server, bob),
        await connect(live_server, bob),
        await connect(live_server, carol),
    )
    sent = await a.request({"content": "psst", "to_username": bob.username})
    dm = sent["message"]
    assert dm["message_type"] == "direct" and dm["to_user_id"] == bob.id
    assert dm["description"] == f"This is a direct message from {alice.username} to {bob.username}."
    for receiver in (b1, b2):
        got = await receiver.recv_until(is_delivery)
        assert got["id"] == dm["id"] and got["content"] == "psst"
    await c.expect_silence(0.3, lambda f: f.get("id") == dm["id"])
    await a.expect_silence(0.1, lambda f: f.get("id") == dm["id"])
    for client in (a, b1, b2, c):
        await client.close()


async def test_mark_read_replies_and_sends_one_receipt_to_the_author(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    a, b = await connect(live_server, alice), await connect(live_server, bob)
    msg = (await a.request({"content": "read me"}))["message"]
    reply = await b.request({"type": "mark_read", "message_id": msg["id"]})
    assert reply == {
        "type": "marked_read",
        "message_id": msg["id"],
        "status": "success",
        "request_id": reply["request_id"],
    }
    receipt = await a.recv_until(lambda f: f.get("type") == "read_receipt")
    assert receipt["message_id"] == msg["id"] and receipt["read_by"] == bob.username
    # Marking again is idempotent: a reply, but no second receipt.
    again = await b.request({"type": "mark_read", "message_id": msg["id"]})
    assert again["type"] == "marked_read"
    await a.expect_silence(0.3, lambda f: f.get("type") == "read_receipt")
    await a.close()
    await b.close()


async def test_rest_mark_read_also_sends_the_receipt(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    a = await connect(live_server, alice)
    msg = (await a.request({"content": "via rest"}))["message"]
    with rest(live_server, bob) as http:
        assert http.post(f"/messages/{msg['id']}/read").status_code == 204
    receipt = await a.recv_until(lambda f: f.get("type") == "read_receipt")
    assert receipt["message_id"] == msg["id"] and receipt["read_by"] == bob.username
    await a.close()


async def test_bulk_marks_are_exact_beyond_fifty_and_send_one_receipt_per_author(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    a, b = await connect(live_server, alice), await connect(live_server, bob)
    # The published 2.x client's form: per-message receipts, the newest 20 per author per mark.
    a_legacy = await WsClient.connect(live_server.ws_url, alice.api_key, legacy=True)
    await b.request({"type": "mark_all_read"})  # start from zero, whatever the room holds
    room = [(await a.request({"content": f"room {i}"}))["message"] for i in range(60)]
    dms = [
        (await a.request({"content": f"dm {i}", "to_username": bob.username}))["message"]
        for i in range(55)
    ]
    count = await b.request({"type": "get_unread_count"})
    assert (count["unread_room_messages"], count["unread_direct_messages"]) == (60, 55)
    assert count["total_unread"] == 115

    marked = await b.request({"type": "mark_room_read"})
    assert "type" not in marked and marked["status"] == "marked_read" and marked["count"] == 60
    direct = await b.request({"type": "mark_direct_read", "from_username": alice.username})
    assert "type" not in direct
    assert (direct["from_username"], direct["count"]) == (alice.username, 55)
    count = await b.request({"type": "get_unread_count"})
    assert count["total_unread"] == 0

    # One receipt per author per mark, however many messages it read.
    for scope, mine in (("room", room), ("direct", dms)):
        summary = await a.recv_until(lambda f: f.get("type") == "read_up_to")
        assert summary == {
            "type": "read_up_to",
            "read_by": bob.username,
            "scope": scope,
            "up_to_seq": mine[-1]["seq"],
            "last_message_id": mine[-1]["id"],
            "count": len(mine),
            "read_at": summary["read_at"],
        }
    legacy_ids = []
    async with asyncio.timeout(5):
        while len(legacy_ids) < 40:
            frame = await a_legacy.recv_until(lambda f: f.get("type") == "read_receipt")
            assert frame["read_by"] == bob.username
            legacy_ids.append(frame["message_id"])
    assert legacy_ids == [m["id"] for m in room[-20:] + dms[-20:]]

    # Nothing left: marking everything again creates no receipts. A fresh single mark is a
    # barrier: any stray receipt would have arrived before its receipt.
    again = await b.request({"type": "mark_all_read"})
    assert again["type"] == "marked_all_read" and again["marked_as_read"] == 0
    last = (await a.request({"content": "barrier"}))["message"]
    await b.request({"type": "mark_read", "message_id": last["id"]})
    for client in (a, a_legacy):
        receipt = await client.recv_until(lambda f: f.get("type", "").startswith("read_"))
        assert (receipt["type"], receipt["message_id"]) == ("read_receipt", last["id"])
    assert not [f for f in a.seen if f.get("type") == "read_receipt"][:-1]
    assert len([f for f in a_legacy.seen if f.get("type") == "read_receipt"]) == 41
    for client in (a, a_legacy, b):
        await client.close()


async def test_history_and_people_frames(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    a, b = await connect(live_server, alice), await connect(live_server, bob)
    await b.request({"type": "mark_all_read"})
    first = (await a.request({"content": "one"}))["message"]
    second = (await a.request({"content": "two"}))["message"]
    dm = (await a.request({"content": "three", "to_username": bob.username}))["message"]

    page = await b.request({"type": "get_messages", "limit": 2})
    assert page["type"] == "messages"
    assert [m["id"] for m in page["messages"]] == [second["id"], first["id"]]
    assert page["pagination"]["limit"] == 2 and page["pagination"]["has_more"] is True

    directs = await b.request({"type": "get_direct_messages"})
    assert directs["type"] == "direct_messages"
    assert [m["id"] for m in directs["messages"]] == [dm["id"]]
    assert directs["pagination"]["total"] == 1

    unread = await b.request({"type": "get_unread_messages"})
    assert unread["type"] == "unread_messages"
    assert [m["id"] for m in unread["messages"]] == [first["id"], second["id"]]
    unread_dm = await b.request({"type": "get_unread_direct_messages"})
    assert [m["id"] for m in unread_dm["messages"]] == [dm["id"]]

    users = await b.request({"type": "get_users"})
    names = [u["username"] for u in users["users"]]
    assert alice.username in names and bob.username in names
    assert "id" not in users["users"][0]
    online = await b.request({"type": "get_online_users"})
    assert {alice.username, bob.username} <= {u["username"] for u in online["users"]}

    profile = await b.request({"type": "get_user_profile", "username": alice.username})
    assert profile["type"] == "user_profile" and profile["user"]["username"] == alice.username
    missing = await b.request({"type": "get_user_profile", "username": "nobody-here"})
    assert missing["type"] == "error" and missing["code"] == "user_not_found"
    await a.close()
    await b.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2, 3]", "invalid_frame"),
        ('{"type": "no_such_thing"}', "unknown_type"),
        ('{"type": 7}', "invalid_frame"),
        ('{"content": 12}', "invalid_frame"),
        ('{"content": ""}', "missing_field"),
        ('{"type": "message"}', "missing_field"),
        (json.dumps({"content": "x" * 10_001}), "content_too_long"),
        ('{"content": "hi", "to_username": ""}', "missing_field"),
        ('{"content": "hi", "to_username": "no-such-user-x"}', "user_not_found"),
        ('{"type": "mark_read"}', "missing_field"),
        ('{"type": "mark_read", "message_id": "nope"}', "message_not_found"),
        ('{"type": "mark_direct_read"}', "missing_field"),
        ('{"type": "get_messages", "limit": -1}', "invalid_frame"),
        ('{"type": "get_messages", "limit": "ten"}', "invalid_frame"),
        ('{"type": "get_messages", "since": "yesterday"}', "invalid_timestamp"),
        ('{"type": "get_user_profile"}', "missing_field"),
        ('{"type": "typing", "to_username": "no-such-user-x"}', "user_not_found"),
        ('{"content": "nul \\u0000 inside"}', "invalid_frame"),
        ('{"type": "mark_read", "message_id": "\\u0000"}', "invalid_frame"),
        ('{"type": "mark_read", "message_id": "NOT-A-UUID"}', "message_not_found"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_connection_stays_usable(
    live_server: LiveServer, frame: str, code: str
) -> None:
    alice = live_server.register()
    a = await connect(live_server, alice)
    await a.send(frame)
    error = await a.recv_until(lambda f: f.get("type") == "error")
    assert error["code"] == code and isinstance(error["error"], str) and error["error"]
    count = await a.request({"type": "get_unread_count"})
    assert count["type"] == "unread_count"
    await a.close()


async def test_binary_frame_gets_an_error_frame(live_server: LiveServer) -> None:
    a = await connect(live_server, live_server.register())
    await a.conn.send(b'{"type": "get_unread_count"}')
    error = await a.recv_until(lambda f: f.get("type") == "error")
    assert error["code"] == "invalid_frame"
    assert (await a.request({"type": "get_users"}))["type"] == "users"
    await a.close()


async def test_errors_echo_the_request_id(live_server: LiveServer) -> None:
    a = await connect(live_server, live_server.register())
    await a.send({"type": "mark_read", "message_id": "missing", "request_id": "abc"})
    error = await a.recv_until(lambda f: f.get("type") == "error")
    assert error["request_id"] == "abc" and error["error"] == "Message missing not found"
    await a.send({"type": "what", "request_id": 5})
    error = await a.recv_until(lambda f: f.get("type") == "error")
    assert error["request_id"] == 5 and error["error"] == "Unknown message type: what"
    await a.close()


async def test_bad_or_missing_key_is_refused_with_401_before_upgrade(
    live_server: LiveServer,
) -> None:
    for query in ("?api_key=" + "0" * 64, "?api_key=short", ""):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(live_server.ws_url + query)
        assert info.value.response.status_code == 401


async def test_key_in_header_is_accepted(live_server: LiveServer) -> None:
    alice = live_server.register()
    async with websockets.connect(
        live_server.ws_url, additional_headers={"X-API-Key": alice.api_key}
    ) as conn:
        client = WsClient(conn)
        assert (await client.request({"type": "get_unread_count"}))["type"] == "unread_count"


async def test_client_ping_gets_pong(live_server: LiveServer) -> None:
    a = await connect(live_server, live_server.register())
    assert (await a.request({"type": "ping"}))["type"] == "pong"
    await a.close()


async def test_viewer_may_listen_but_not_send_or_be_messaged(live_server: LiveServer) -> None:
    viewer = live_server.register(role="viewer")
    alice = live_server.register()
    v, a = await connect(live_server, viewer), await connect(live_server, alice)
    denied = await v.request({"content": "can I?"})
    assert denied["code"] == "permission_denied"
    assert "room messages" in denied["error"]
    to_viewer = await a.request({"content": "hi", "to_username": viewer.username})
    assert to_viewer["code"] == "recipient_is_viewer"
    typing_dm = await v.request({"type": "typing", "to_username": alice.username})
    assert typing_dm["code"] == "permission_denied"
    msg = (await a.request({"content": "viewers read this"}))["message"]
    await v.recv_until(lambda f: f.get("id") == msg["id"])
    await v.close()
    await a.close()


async def test_rotating_the_key_closes_open_sockets(live_server: LiveServer) -> None:
    alice = live_server.register()
    a = await connect(live_server, alice)
    with rest(live_server, alice) as http:
        new_key = http.post("/users/me/regenerate-api-key").json()["api_key"]
    with pytest.raises(websockets.ConnectionClosed) as info:
        await a.recv_until(lambda f: False)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(f"{live_server.ws_url}?api_key={alice.api_key}")
    fresh = await WsClient.connect(live_server.ws_url, new_key)
    assert (await fresh.request({"type": "get_users"}))["type"] == "users"
    await fresh.close()


async def test_renamed_user_sends_under_the_new_name(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    a, b = await connect(live_server, alice), await connect(live_server, bob)
    new_name = live_server.unique("renamed")
    with rest(live_server, alice) as http:
        assert http.patch("/users/me/username", json={"username": new_name}).status_code == 200
    sent = (await a.request({"content": "new me"}))["message"]
    assert sent["from_username"] == new_name
    got = await b.recv_until(lambda f: f.get("id") == sent["id"])
    assert got["from_username"] == new_name and got["from_user_id"] == alice.id
    # DMs to the new name reach the open socket.
    dm = (await b.request({"content": "hi new", "to_username": new_name}))["message"]
    await a.recv_until(lambda f: f.get("id") == dm["id"])
    await a.close()
    await b.close()


async def test_marking_pushes_the_new_counts_to_every_connection_of_the_reader(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    a = await connect(live_server, alice)
    b1, b2 = await connect(live_server, bob), await connect(live_server, bob)
    await b1.request({"type": "mark_all_read"})
    msg = (await a.request({"content": "count me", "to_username": bob.username}))["message"]
    for device in (b1, b2):  # frames before the delivery belong to the earlier mark
        await device.recv_until(lambda f: f.get("id") == msg["id"])
    with rest(live_server, bob) as http:
        assert http.post(f"/messages/{msg['id']}/read").status_code == 204
    for device in (b1, b2):
        pushed = await device.recv_until(lambda f: f.get("type") == "unread_count")
        assert "request_id" not in pushed
        assert (pushed["unread_direct_messages"], pushed["total_unread"]) == (0, 0)
    # Nothing newly read, nothing pushed.
    await b1.request({"type": "mark_all_read"})
    await b2.expect_silence(0.3, lambda f: f.get("type") == "unread_count")
    for client in (a, b1, b2):
        await client.close()


@pytest.mark.single_node(reason="/metrics counts one process")
async def test_metrics_count_what_happened(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(TOKEN_BOWL_METRICS_TOKEN="scrape")
    alice, bob = server.register(), server.register()
    a, b = await connect(server, alice), await connect(server, bob)
    for i in range(3):
        await a.request({"content": f"m{i}"})
    text = httpx.get(f"{server.http_url}/metrics", headers={"Authorization": "Bearer scrape"}).text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["tbc_connections"] == 2 and values["tbc_online_users"] == 2
    assert values["tbc_messages_stored_total"] == 3
    assert 1 <= values["tbc_message_commits_total"] <= 3
    assert values["tbc_frames_delivered_total"] >= 3  # bob got each message
    await a.close()
    await b.close()
