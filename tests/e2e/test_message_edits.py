"""Edits and deletes through a real server: who may, what is pushed to whom, history, unread
counts, resume, and bad input changing nothing, over REST and WebSocket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import Account, LiveServer
from tests.wsclient import Frame, WsClient, is_delivery

MISSING = "00000000-0000-4000-8000-000000000000"


def api(server: LiveServer, account: Account) -> httpx.Client:
    return httpx.Client(
        base_url=server.http_url, headers={"X-API-Key": account.api_key}, timeout=10
    )


def send(server: LiveServer, account: Account, content: str, to: str | None = None) -> Frame:
    body: dict[str, Any] = {"content": content}
    if to is not None:
        body["to_username"] = to
    with api(server, account) as http:
        resp = http.post("/messages", json=body)
    assert resp.status_code == 201, resp.text
    frame: Frame = resp.json()
    return frame


def counts(server: LiveServer, account: Account) -> tuple[int, int]:
    with api(server, account) as http:
        body = http.get("/messages/unread/count").json()
    return body["unread_room_messages"], body["unread_direct_messages"]


async def opened(server: LiveServer, account: Account, **kwargs: Any) -> WsClient:
    client = await WsClient.connect(server.ws_url, account.api_key, **kwargs)
    if not kwargs.get("legacy"):
        assert (await client.recv())["type"] == "hello"
    return client


def of_type(kind: str, message_id: str) -> Callable[[Frame], bool]:
    def match(frame: Frame) -> bool:
        if frame.get("type") != kind or "request_id" in frame:
            return False
        found = frame["message"]["id"] if kind == "message_edited" else frame["message_id"]
        return bool(found == message_id)

    return match


async def test_an_edit_reaches_every_extended_connection_that_can_see_it_and_history(
    live_server: LiveServer,
) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    bob_ws = await opened(live_server, bob)
    alice_ws = await opened(live_server, alice)  # the author's own device hears it too
    carol_legacy = await opened(live_server, carol, legacy=True)
    room = send(live_server, alice, "helo")
    dm = send(live_server, alice, "psst", to=bob.username)

    with api(live_server, alice) as http:
        resp = http.patch(f"/messages/{room['id']}", json={"content": "hello"})
        dm_resp = http.patch(f"/messages/{dm['id']}", json={"content": "psst!"})
    assert resp.status_code == dm_resp.status_code == 200, resp.text
    edited = resp.json()
    assert edited["content"] == "hello" and edited["edited_at"] and edited["id"] == room["id"]
    assert edited["seq"] == room["seq"]  # the message keeps its place

    for client in (bob_ws, alice_ws):
        pushed = await client.recv_until(of_type("message_edited", room["id"]))
        assert pushed["message"]["content"] == "hello"
        assert pushed["edited_at"] == edited["edited_at"] == pushed["message"]["edited_at"]
        assert pushed["seq"] > dm["seq"]  # the edit's own place in the sequence
        assert "content" not in pushed and "from_username" not in pushed
    dm_push = await bob_ws.recv_until(of_type("message_edited", dm["id"]))
    assert dm_push["message"]["content"] == "psst!"
    # A legacy connection gets none of it (it would take unknown frames for messages).
    await carol_legacy.expect_silence(0.5, lambda f: f.get("type") == "message_edited")

    with api(live_server, carol) as http:
        history = http.get("/messages", params={"limit": 5}).json()["messages"]
        dm_seen_by_carol = http.get(f"/messages/{dm['id']}")
    listed = next(m for m in history if m["id"] == room["id"])
    assert (listed["content"], listed["edited_at"]) == ("hello", edited["edited_at"])
    assert dm_seen_by_carol.status_code == 404
    for client in (bob_ws, alice_ws, carol_legacy):
        await client.close()


async def test_a_delete_reaches_both_parties_of_a_dm_and_leaves_history(
    live_server: LiveServer,
) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    bob_ws, carol_ws = await opened(live_server, bob), await opened(live_server, carol)
    alice_ws = await opened(live_server, alice)
    dm = send(live_server, alice, "oops", to=bob.username)
    room = send(live_server, alice, "room oops")

    reply = await alice_ws.request({"type": "delete_message", "message_id": dm["id"]})
    assert reply["type"] == "message_deleted" and reply["message_id"] == dm["id"]
    assert reply["seq"] > room["seq"] and reply["deleted_at"]
    pushed = await bob_ws.recv_until(of_type("message_deleted", dm["id"]))
    assert pushed["seq"] == reply["seq"]
    # Her own connections hear it too (this one before the reply, in seq order).
    assert [f for f in alice_ws.seen if of_type("message_deleted", dm["id"])(f)]
    # Carol cannot see the DM, so she is not told about it.
    await carol_ws.expect_silence(0.5, lambda f: f.get("type") == "message_deleted")

    with api(live_server, bob) as http:
        assert http.delete(f"/messages/{room['id']}").status_code == 403
        direct = http.get("/messages/direct").json()["messages"]
        assert dm["id"] not in [m["id"] for m in direct]
        assert http.get(f"/messages/{dm['id']}").status_code == 404
    with api(live_server, alice) as http:
        assert http.delete(f"/messages/{room['id']}").status_code == 204
    await carol_ws.recv_until(of_type("message_deleted", room["id"]))
    with api(live_server, carol) as http:
        room_ids = [m["id"] for m in http.get("/messages", params={"limit": 20}).json()["messages"]]
    assert room["id"] not in room_ids
    for client in (alice_ws, bob_ws, carol_ws):
        await client.close()


async def test_unread_counts_drop_exactly_for_those_who_had_it_unread(
    live_server: LiveServer,
) -> None:
    """On the shared server the room holds other tests' messages too: each count is checked
    against its value before the deletes (no other test sends meanwhile)."""
    server = live_server
    author, reader, marker, idle = (server.register() for _ in range(4))
    first = send(server, author, "first")
    doomed = send(server, author, "doomed")
    dm_unread = send(server, author, "dm 1", to=idle.username)
    dm_read = send(server, author, "dm 2", to=reader.username)
    with api(server, reader) as http:
        assert http.post(f"/messages/{doomed['id']}/read").status_code == 204
        assert http.post(f"/messages/{dm_read['id']}/read").status_code == 204
    with api(server, marker) as http:
        assert http.post("/messages/mark-all-read").status_code == 200
    late = server.register()  # every retained room message starts unread for a newcomer
    people = (author, reader, marker, idle, late)
    before = [counts(server, p) for p in people]
    assert before[2] == (0, 0) and before[3][1] == 1 and before[1][1] == 0
    assert before[3][0] == before[4][0] == before[1][0] + 1  # reader has read "doomed"

    with api(server, author) as http:
        for message in (doomed, dm_unread, dm_read):
            assert http.delete(f"/messages/{message['id']}").status_code == 204

    change = [(0, 0), (0, 0), (0, 0), (-1, -1), (-1, 0)]  # only where it was unread
    after = [counts(server, p) for p in people]
    assert after == [(r + dr, d + dd) for (r, d), (dr, dd) in zip(before, change, strict=True)]
    with api(server, idle) as http:
        # The newest two unread (oldest first): "first" is the newest, "doomed" is gone.
        newest = {"limit": 2, "offset": max(0, after[3][0] - 2)}
        unread = http.get("/messages/unread", params=newest).json()
        unread_dms = http.get("/messages/direct/unread").json()
    assert unread[-1]["id"] == first["id"] and unread_dms == []
    assert doomed["id"] not in [m["id"] for m in unread]
    # Marking everything read still ends at zero, and later messages count as usual.
    send(server, author, "later")
    assert counts(server, idle) == (after[3][0] + 1, 0)
    with api(server, idle) as http:
        marked = http.post("/messages/mark-all-read").json()["marked_as_read"]
    assert marked == after[3][0] + 1 and counts(server, idle) == (0, 0)


async def test_permissions_edit_own_or_as_admin_over_both_transports(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    admin = live_server.admin
    message = send(live_server, alice, "original")
    with api(live_server, bob) as http:
        refused = http.patch(f"/messages/{message['id']}", json={"content": "mine now"})
        assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
        assert http.delete(f"/messages/{message['id']}").json()["code"] == "permission_denied"
        assert http.get(f"/admin/messages/{message['id']}").json()["code"] == "admin_required"
        # The admin gate comes before body validation, as upstream.
        assert http.patch(f"/admin/messages/{message['id']}", json={}).status_code == 403
    bob_ws = await opened(live_server, bob)
    for frame in (
        {"type": "edit_message", "message_id": message["id"], "content": "x"},
        {"type": "delete_message", "message_id": message["id"]},
    ):
        error = await bob_ws.request(frame)
        assert (error["type"], error["code"]) == ("error", "permission_denied")
    await bob_ws.close()

    with api(live_server, admin) as http:
        got = http.get(f"/admin/messages/{message['id']}")
        assert got.status_code == 200 and got.json()["content"] == "original"
        edited = http.patch(f"/admin/messages/{message['id']}", json={"content": "moderated"})
        assert edited.status_code == 200 and edited.json()["content"] == "moderated"
    admin_ws = await opened(live_server, admin)
    reply = await admin_ws.request(
        {"type": "edit_message", "message_id": message["id"], "content": "again"}
    )
    assert reply["type"] == "message_edited" and reply["message"]["content"] == "again"
    await admin_ws.close()
    with api(live_server, admin) as http:
        assert http.delete(f"/admin/messages/{message['id']}").status_code == 204
        gone = http.get(f"/admin/messages/{message['id']}")
        assert (gone.status_code, gone.json()["code"]) == (404, "message_deleted")


async def test_bad_edits_and_deletes_change_nothing_rest(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    message = send(live_server, alice, "keep me")
    secret = send(live_server, alice, "for bob", to=bob.username)
    gone = send(live_server, alice, "gone")
    with api(live_server, alice) as http:
        assert http.delete(f"/messages/{gone['id']}").status_code == 204
    before = counts(live_server, bob)
    carol = live_server.register()

    with api(live_server, alice) as http:
        cases = [
            (http.patch(f"/messages/{message['id']}", json={"content": ""}), 422),
            (http.patch(f"/messages/{message['id']}", json={"content": "x" * 10_001}), 422),
            (http.patch(f"/messages/{message['id']}", json={}), 422),
            (http.patch(f"/messages/{MISSING}", json={"content": "x"}), 404),
            (http.patch("/messages/not-a-uuid", json={"content": "x"}), 404),
            (http.patch(f"/messages/{gone['id']}", json={"content": "back"}), 404),
            (http.delete(f"/messages/{gone['id']}"), 404),
            (http.delete(f"/messages/{MISSING}"), 404),
        ]
    for resp, status in cases:
        assert resp.status_code == status, resp.text
    codes = [resp.json()["code"] for resp, _ in cases]
    assert codes[3:] == ["message_not_found"] * 2 + ["message_deleted"] * 2 + ["message_not_found"]
    with api(live_server, carol) as http:  # someone else's DM: as if it did not exist
        hidden = http.patch(f"/messages/{secret['id']}", json={"content": "x"})
        assert (hidden.status_code, hidden.json()["code"]) == (404, "message_not_found")
        assert http.delete(f"/messages/{secret['id']}").status_code == 404
    with api(live_server, bob) as http:
        assert http.get(f"/messages/{message['id']}").json()["content"] == "keep me"
        assert http.get(f"/messages/{secret['id']}").json()["content"] == "for bob"
    assert counts(live_server, bob) == before


async def test_bad_edits_and_deletes_change_nothing_websocket(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    message = send(live_server, alice, "keep me")
    ws = await opened(live_server, alice)
    gone = await ws.request({"type": "message", "content": "gone"})
    await ws.request({"type": "delete_message", "message_id": gone["message"]["id"]})
    cases = [
        ({"type": "edit_message", "message_id": message["id"]}, "missing_field"),
        ({"type": "edit_message", "message_id": message["id"], "content": ""}, "missing_field"),
        (
            {"type": "edit_message", "message_id": message["id"], "content": "x" * 10_001},
            "content_too_long",
        ),
        ({"type": "edit_message", "content": "x"}, "missing_field"),
        ({"type": "edit_message", "message_id": 5, "content": "x"}, "invalid_frame"),
        ({"type": "edit_message", "message_id": MISSING, "content": "x"}, "message_not_found"),
        (
            {"type": "edit_message", "message_id": gone["message"]["id"], "content": "x"},
            "message_deleted",
        ),
        ({"type": "delete_message"}, "missing_field"),
        ({"type": "delete_message", "message_id": "nope"}, "message_not_found"),
        ({"type": "delete_message", "message_id": gone["message"]["id"]}, "message_deleted"),
    ]
    for frame, code in cases:
        reply = await ws.request(frame)
        assert (reply["type"], reply["code"]) == ("error", code), frame
    # Still open and nothing changed.
    assert (await ws.request({"type": "ping"}))["type"] == "pong"
    await ws.close()
    with api(live_server, bob) as http:
        stored = http.get(f"/messages/{message['id']}").json()
    assert stored["content"] == "keep me" and "edited_at" not in stored


async def test_legacy_delete_message_reply_is_upstreams_shape(live_server: LiveServer) -> None:
    """The 2.1.1 client's admin delete gets exactly ``{"type", "message_id"}``; an author
    may now delete their own too. No push reaches legacy connections."""
    alice, bob = live_server.register(), live_server.register()
    admin_ws = await opened(live_server, live_server.admin, legacy=True)
    alice_ws = await opened(live_server, alice, legacy=True)
    bob_ws = await opened(live_server, bob, legacy=True)
    first, second = send(live_server, bob, "a"), send(live_server, alice, "b")
    await admin_ws.send({"type": "delete_message", "message_id": first["id"]})
    assert await admin_ws.recv_until(lambda f: f.get("type") == "message_deleted") == {
        "type": "message_deleted",
        "message_id": first["id"],
    }
    await alice_ws.send({"type": "delete_message", "message_id": second["id"]})
    reply = await alice_ws.recv_until(lambda f: f.get("type") == "message_deleted")
    assert reply == {"type": "message_deleted", "message_id": second["id"]}
    await bob_ws.expect_silence(0.5, lambda f: f.get("type") == "message_deleted")
    for client in (admin_ws, alice_ws, bob_ws):
        await client.close()


async def test_resume_replays_messages_edits_and_deletes_in_seq_order(
    live_server: LiveServer,
) -> None:
    me, alice = live_server.register(), live_server.register()
    seen = send(live_server, alice, "seen")
    doomed = send(live_server, alice, "doomed")
    first = await opened(live_server, me)
    await first.close()
    cursor = doomed["seq"]
    last_seq_before = cursor

    with api(live_server, alice) as http:
        http.patch(f"/messages/{seen['id']}", json={"content": "seen v2"})
        fresh = send(live_server, alice, "fresh")
        http.patch(f"/messages/{fresh['id']}", json={"content": "fresh v2"})
        http.delete(f"/messages/{doomed['id']}")
        short_lived = send(live_server, alice, "short lived")
        http.delete(f"/messages/{short_lived['id']}")
        http.patch(f"/messages/{seen['id']}", json={"content": "seen v3"})

    back = await WsClient.connect(live_server.ws_url, me.api_key, query=f"&since_seq={cursor}")
    assert (await back.recv())["type"] == "hello"
    frames = []
    while (frame := await back.recv()).get("type") != "resumed":
        frames.append(frame)
    resumed = frame

    def summary(frame: Frame) -> tuple[str, str, str | None]:
        if is_delivery(frame):
            return ("message", frame["id"], frame["content"])
        if frame["type"] == "message_edited":
            return ("edited", frame["message"]["id"], frame["message"]["content"])
        return (frame["type"], frame["message_id"], None)

    assert [summary(f) for f in frames] == [
        ("edited", seen["id"], "seen v2"),
        ("message", fresh["id"], "fresh v2"),  # as it now reads
        ("edited", fresh["id"], "fresh v2"),
        ("message_deleted", doomed["id"], None),
        ("edited", seen["id"], "seen v3"),
    ]
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and seqs[0] > last_seq_before
    assert resumed["replayed"] == len(frames) and resumed["last_seq"] >= seqs[-1]
    await back.close()
    # A legacy resume gets the messages only.
    legacy = await WsClient.connect(
        live_server.ws_url, me.api_key, legacy=True, query=f"&since_seq={cursor}"
    )
    replayed = await legacy.recv()
    assert is_delivery(replayed) and replayed["id"] == fresh["id"]
    await legacy.expect_silence(
        0.5, lambda f: f.get("type") in ("message_edited", "message_deleted")
    )
    await legacy.close()
