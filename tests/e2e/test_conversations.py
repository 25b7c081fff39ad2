"""Conversations over REST and WebSocket against a real server (PROTOCOL.md 4.7, 4.8, 5.3-5.5).

Upstream's bugs are fixed and each has a test here: a message id that does not exist, or that
names a DM the caller is not part of, refuses the whole request and changes nothing (upstream
saved the conversation anyway over WebSocket, and let anyone list anyone's DM); a PATCH that
changes nothing answers 200 (upstream: 500); the page bounds hold on both transports.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Account, LiveServer
from tests.wsclient import Frame, WsClient

CONVERSATION_KEYS = {
    "id",
    "title",
    "description",
    "message_ids",
    "created_by_username",
    "created_at",
}

Rest = Callable[..., httpx.Response]


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.http_url, timeout=30) as client:
        yield client


def key(account: Account) -> dict[str, str]:
    return {"X-API-Key": account.api_key}


async def send(
    http: httpx.AsyncClient, author: Account, content: str, to: str | None = None
) -> str:
    body: dict[str, Any] = {"content": content}
    if to is not None:
        body["to_username"] = to
    resp = await http.post("/messages", json=body, headers=key(author))
    assert resp.status_code == 201, resp.text
    message_id: str = resp.json()["id"]
    return message_id


async def create(http: httpx.AsyncClient, owner: Account, **body: Any) -> dict[str, Any]:
    resp = await http.post("/conversations", json=body, headers=key(owner))
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def listing(http: httpx.AsyncClient, reader: Account, **params: Any) -> dict[str, Any]:
    resp = await http.get("/conversations", params=params, headers=key(reader))
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


async def get(http: httpx.AsyncClient, reader: Account, conversation_id: str) -> httpx.Response:
    return await http.get(f"/conversations/{conversation_id}", headers=key(reader))


def error_code(resp: httpx.Response) -> str:
    code: str = resp.json()["code"]
    return code


@pytest.fixture
def people(live_server: LiveServer) -> dict[str, Account]:
    """alice and bob (members, in a DM), carol and dave (a DM of their own), a viewer."""
    return {
        "alice": live_server.register(live_server.unique("cv_alice")),
        "bob": live_server.register(live_server.unique("cv_bob")),
        "carol": live_server.register(live_server.unique("cv_carol")),
        "dave": live_server.register(live_server.unique("cv_dave")),
        "viewer": live_server.register(live_server.unique("cv_viewer"), role="viewer"),
    }


# --------------------------------------------------------------------------------------- REST


async def test_rest_create_list_get_update_delete(
    http: httpx.AsyncClient, people: dict[str, Account]
) -> None:
    alice, bob = people["alice"], people["bob"]
    room = await send(http, alice, "conv room")
    dm = await send(http, alice, "conv dm", to=bob.username)

    first = await create(
        http, alice, title="Draft picks", description="why", message_ids=[room, dm]
    )
    assert set(first) == CONVERSATION_KEYS
    assert first["title"] == "Draft picks"
    assert first["description"] == "why"
    assert first["message_ids"] == [room, dm]
    assert first["created_by_username"] == alice.username
    assert uuid.UUID(first["id"]).version == 4 and first["id"] == first["id"].lower()
    assert datetime.fromisoformat(first["created_at"]).utcoffset() is not None
    bare = await create(http, alice)
    assert (bare["title"], bare["description"], bare["message_ids"]) == (None, None, [])

    # Newest first; the nested pagination and the flat fields the 2.1.1 client reads agree.
    page = await listing(http, alice)
    assert [c["id"] for c in page["conversations"]] == [bare["id"], first["id"]]
    assert page["pagination"] == {"total": 2, "offset": 0, "limit": 50, "has_more": False}
    assert (page["total"], page["limit"], page["offset"]) == (2, 50, 0)
    second = await listing(http, alice, limit=1, offset=1)
    assert [c["id"] for c in second["conversations"]] == [first["id"]]
    assert second["pagination"] == {"total": 2, "offset": 1, "limit": 1, "has_more": False}
    assert (await listing(http, alice, limit=1))["pagination"]["has_more"] is True

    assert (await get(http, alice, first["id"])).json() == first

    # PATCH: only what is given changes; message_ids replaces the list.
    resp = await http.patch(
        f"/conversations/{first['id']}", json={"title": "Picks"}, headers=key(alice)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {**first, "title": "Picks"}
    resp = await http.patch(
        f"/conversations/{first['id']}",
        json={"message_ids": [dm, room, dm], "description": None},
        headers=key(alice),
    )
    assert resp.json() == {**first, "title": "Picks", "message_ids": [dm, room, dm]}
    resp = await http.patch(
        f"/conversations/{first['id']}", json={"message_ids": []}, headers=key(alice)
    )
    assert resp.json()["message_ids"] == []

    resp = await http.delete(f"/conversations/{first['id']}", headers=key(alice))
    assert (resp.status_code, resp.content) == (204, b"")
    resp = await get(http, alice, first["id"])
    assert resp.status_code == 404
    assert resp.json() == {
        "detail": f"Conversation {first['id']} not found",
        "code": "conversation_not_found",
    }
    resp = await http.delete(f"/conversations/{first['id']}", headers=key(alice))
    assert (resp.status_code, error_code(resp)) == (404, "conversation_not_found")
    assert [c["id"] for c in (await listing(http, alice))["conversations"]] == [bare["id"]]


async def test_rest_patch_with_nothing_to_change_returns_it_unchanged(
    http: httpx.AsyncClient, people: dict[str, Account]
) -> None:
    """Upstream answered 500 "Failed to update conversation" (gap 21)."""
    alice = people["alice"]
    room = await send(http, alice, "unchanged")
    conv = await create(http, alice, title="t", message_ids=[room])
    for body in ({}, {"title": None, "description": None, "message_ids": None}):
        resp = await http.patch(f"/conversations/{conv['id']}", json=body, headers=key(alice))
        assert resp.status_code == 200, resp.text
        assert resp.json() == conv
    assert (await get(http, alice, conv["id"])).json() == conv


async def test_rest_a_bad_message_id_rejects_the_whole_request(
    http: httpx.AsyncClient, people: dict[str, Account]
) -> None:
    alice, bob, carol, dave = (people[n] for n in ("alice", "bob", "carol", "dave"))
    room = await send(http, alice, "kept")
    own_dm = await send(http, bob, "to alice", to=alice.username)
    others_dm = await send(http, carol, "private", to=dave.username)
    missing = str(uuid.uuid4())

    for ids, bad in (
        ([room, missing], missing),
        ([room, others_dm], others_dm),  # a DM alice is not part of is "not found"
        ([room.upper()], room.upper()),  # ids match their stored form exactly
    ):
        resp = await http.post(
            "/conversations", json={"title": "x", "message_ids": ids}, headers=key(alice)
        )
        assert resp.status_code == 404, resp.text
        assert resp.json() == {"detail": f"Message {bad} not found", "code": "message_not_found"}
    resp = await http.post(
        "/conversations", json={"message_ids": [room, "not-a-uuid"]}, headers=key(alice)
    )
    assert (resp.status_code, error_code(resp)) == (422, "validation_error")
    assert "Invalid UUID format for message_id: not-a-uuid" in resp.text
    assert (await listing(http, alice))["total"] == 0

    # An update with a bad id changes nothing, not even the fields given beside it.
    conv = await create(http, alice, title="before", message_ids=[room, own_dm])
    for ids in ([own_dm, missing], [others_dm]):
        resp = await http.patch(
            f"/conversations/{conv['id']}",
            json={"title": "after", "description": "d", "message_ids": ids},
            headers=key(alice),
        )
        assert (resp.status_code, error_code(resp)) == (404, "message_not_found")
    assert (await get(http, alice, conv["id"])).json() == conv
    # The parties of a DM may list it.
    assert (await create(http, carol, message_ids=[others_dm]))["message_ids"] == [others_dm]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"description": ""}, "description"),
        ({"description": "d" * 10_001}, "description"),
        ({"message_ids": [str(uuid.uuid4())] * 1001}, "message_ids"),
        ({"message_ids": [7]}, "message_ids"),
        ({"message_ids": "abc"}, "message_ids"),
        ({"title": "a\x00b"}, "title"),
    ],
)
async def test_rest_field_limits(
    http: httpx.AsyncClient, people: dict[str, Account], body: dict[str, Any], field: str
) -> None:
    alice = people["alice"]
    resp = await http.post("/conversations", json=body, headers=key(alice))
    assert (resp.status_code, error_code(resp)) == (422, "validation_error"), resp.text
    assert resp.json()["detail"][0]["loc"][:2] == ["body", field]
    conv = await create(http, alice, title="kept")
    resp = await http.patch(f"/conversations/{conv['id']}", json=body, headers=key(alice))
    assert (resp.status_code, error_code(resp)) == (422, "validation_error"), resp.text
    assert (await get(http, alice, conv["id"])).json() == conv


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}, {"offset": 2**63}],
)
async def test_rest_list_bounds(
    http: httpx.AsyncClient, people: dict[str, Account], params: dict[str, Any]
) -> None:
    resp = await http.get("/conversations", params=params, headers=key(people["alice"]))
    assert (resp.status_code, error_code(resp)) == (422, "validation_error")


async def test_rest_unknown_and_malformed_conversation_ids(
    http: httpx.AsyncClient, people: dict[str, Account]
) -> None:
    alice = people["alice"]
    conv = await create(http, alice, title="x")
    for conversation_id in (str(uuid.uuid4()), "nope", conv["id"].upper()):
        for method in ("GET", "DELETE"):
            resp = await http.request(
                method, f"/conversations/{conversation_id}", headers=key(alice)
            )
            assert (resp.status_code, error_code(resp)) == (404, "conversation_not_found")
        resp = await http.patch(
            f"/conversations/{conversation_id}", json={"title": "y"}, headers=key(alice)
        )
        assert (resp.status_code, error_code(resp)) == (404, "conversation_not_found")
    resp = await http.get("/conversations", headers={"X-API-Key": "0" * 64})
    assert resp.status_code == 401


async def test_rest_permissions(
    http: httpx.AsyncClient, live_server: LiveServer, people: dict[str, Account]
) -> None:
    alice, bob, carol, viewer = (people[n] for n in ("alice", "bob", "carol", "viewer"))
    admin = live_server.admin
    room = await send(http, alice, "seen by all")
    dm = await send(http, alice, "between alice and bob", to=bob.username)
    conv = await create(http, alice, title="mine", message_ids=[room, dm])
    path = f"/conversations/{conv['id']}"

    # Others may not read, change or delete it; admins are not exempt from reading.
    for other in (bob, carol, admin):
        resp = await get(http, other, conv["id"])
        assert resp.status_code == 403
        assert resp.json() == {
            "detail": "You can only view your own conversations",
            "code": "permission_denied",
        }
        assert conv["id"] not in [c["id"] for c in (await listing(http, other))["conversations"]]
    for other in (bob, viewer, admin):
        resp = await http.patch(path, json={"title": "hijacked"}, headers=key(other))
        assert resp.status_code == 403
        assert resp.json()["detail"] == "You can only update your own conversations"
    for other in (bob, viewer):
        resp = await http.delete(path, headers=key(other))
        assert resp.status_code == 403
        assert resp.json()["detail"] == "You can only delete your own conversations"

    # A viewer reads any conversation, but is shown only the messages it may see: not the
    # DM between alice and bob.
    shown = {**conv, "message_ids": [room]}
    assert (await get(http, viewer, conv["id"])).json() == shown
    everyone = (await listing(http, viewer, limit=100))["conversations"]
    assert shown in everyone
    assert (await get(http, alice, conv["id"])).json() == conv

    # Only admins use the admin route; a member gets 403 before any lookup.
    for other in (alice, viewer):
        for target in (conv["id"], str(uuid.uuid4())):
            resp = await http.delete(f"/admin/conversations/{target}", headers=key(other))
            assert resp.status_code == 403
            assert resp.json() == {"detail": "Admin privileges required", "code": "admin_required"}
    resp = await http.delete(f"/admin/conversations/{conv['id']}", headers=key(admin))
    assert resp.status_code == 204
    resp = await http.delete(f"/admin/conversations/{conv['id']}", headers=key(admin))
    assert (resp.status_code, error_code(resp)) == (404, "conversation_not_found")
    assert (await get(http, alice, conv["id"])).status_code == 404

    # An admin deletes anyone's conversation on the plain route too (as over WebSocket).
    other = await create(http, bob, title="bob's")
    resp = await http.delete(f"/conversations/{other['id']}", headers=key(admin))
    assert resp.status_code == 204
    assert (await get(http, bob, other["id"])).status_code == 404


async def test_every_role_creates_and_manages_its_own(
    http: httpx.AsyncClient, live_server: LiveServer, people: dict[str, Account]
) -> None:
    resp = await http.post(
        "/bots", json={"username": live_server.unique("cv_bot")}, headers=key(people["alice"])
    )
    assert resp.status_code == 201, resp.text
    bot = Account(
        id=resp.json()["id"], username=resp.json()["username"], api_key=resp.json()["api_key"]
    )
    room = await send(http, bot, "a bot's room message")
    for account in (people["bob"], people["viewer"], bot, live_server.admin):
        conv = await create(http, account, title="own", message_ids=[room])
        assert conv["created_by_username"] == account.username
        assert conv["id"] in [
            c["id"] for c in (await listing(http, account, limit=100))["conversations"]
        ]
        assert (await get(http, account, conv["id"])).json() == conv
        resp = await http.patch(
            f"/conversations/{conv['id']}", json={"title": "mine"}, headers=key(account)
        )
        assert resp.json() == {**conv, "title": "mine"}
        resp = await http.delete(f"/conversations/{conv['id']}", headers=key(account))
        assert resp.status_code == 204


async def test_rest_creator_shown_under_current_name(
    http: httpx.AsyncClient, live_server: LiveServer, people: dict[str, Account]
) -> None:
    alice, viewer = people["alice"], people["viewer"]
    conv = await create(http, alice, title="renamed")
    new_name = live_server.unique("cv_renamed")
    resp = await http.patch("/users/me/username", json={"username": new_name}, headers=key(alice))
    assert resp.status_code == 200, resp.text
    assert (await get(http, alice, conv["id"])).json()["created_by_username"] == new_name
    assert (await get(http, viewer, conv["id"])).json()["created_by_username"] == new_name
    # Ownership is by account, not by name: someone taking the old name gets nothing.
    impostor = live_server.register(alice.username)
    assert (await listing(http, impostor))["total"] == 0
    assert (await get(http, impostor, conv["id"])).status_code == 403


async def test_a_deleted_message_drops_out_of_conversations(
    http: httpx.AsyncClient, people: dict[str, Account]
) -> None:
    alice, bob, viewer = people["alice"], people["bob"], people["viewer"]
    first = await send(http, alice, "to be deleted")
    dm = await send(http, bob, "stays", to=alice.username)
    last = await send(http, alice, "stays too")
    conv = await create(http, alice, title="t", message_ids=[first, dm, last])
    resp = await http.delete(f"/messages/{first}", headers=key(alice))
    assert resp.status_code == 204, resp.text

    assert (await get(http, alice, conv["id"])).json()["message_ids"] == [dm, last]
    assert (await listing(http, alice))["conversations"][0]["message_ids"] == [dm, last]
    assert (await get(http, viewer, conv["id"])).json()["message_ids"] == [last]
    # A deleted message cannot be listed again, and the refusal changes nothing.
    for body in ({"message_ids": [last, first]}, {"title": "x", "message_ids": [first]}):
        resp = await http.patch(f"/conversations/{conv['id']}", json=body, headers=key(alice))
        assert (resp.status_code, error_code(resp)) == (404, "message_not_found")
    resp = await http.post("/conversations", json={"message_ids": [first]}, headers=key(alice))
    assert (resp.status_code, error_code(resp)) == (404, "message_not_found")
    assert (await get(http, alice, conv["id"])).json() == {**conv, "message_ids": [dm, last]}


async def test_a_deleted_creator_leaves_the_conversation_to_no_one(
    http: httpx.AsyncClient, live_server: LiveServer, people: dict[str, Account]
) -> None:
    alice, viewer = people["alice"], people["viewer"]
    admin = live_server.admin
    room = await send(http, alice, "outlives its author")
    conv = await create(http, alice, title="orphan", message_ids=[room])
    resp = await http.delete(f"/admin/users/{alice.id}", headers=key(admin))
    assert resp.status_code == 204, resp.text

    # Kept, under the name it was made with; viewers still read it.
    assert (await get(http, viewer, conv["id"])).json() == conv
    # A new account with the same name owns nothing of the old one's.
    heir = live_server.register(alice.username)
    assert (await listing(http, heir))["total"] == 0
    assert (await get(http, heir, conv["id"])).status_code == 403
    resp = await http.delete(f"/conversations/{conv['id']}", headers=key(heir))
    assert resp.status_code == 403
    # An admin can clear it away.
    resp = await http.delete(f"/admin/conversations/{conv['id']}", headers=key(admin))
    assert resp.status_code == 204


# ---------------------------------------------------------------------------------- WebSocket


@pytest.fixture
async def ws_for(live_server: LiveServer) -> AsyncIterator[Callable[..., Any]]:
    opened: list[WsClient] = []

    async def open_ws(account: Account, legacy: bool = False) -> WsClient:
        client = await WsClient.connect(live_server.ws_url, account.api_key, legacy=legacy)
        opened.append(client)
        return client

    yield open_ws
    for client in opened:
        await client.close()


async def ws_error(ws: WsClient, frame: Frame) -> Frame:
    reply = await ws.request(frame)
    assert reply["type"] == "error", reply
    return reply


@pytest.mark.parametrize("legacy", [False, True], ids=["extended", "legacy"])
async def test_ws_conversation_frames(
    http: httpx.AsyncClient,
    people: dict[str, Account],
    ws_for: Callable[..., Any],
    legacy: bool,
) -> None:
    alice, bob = people["alice"], people["bob"]
    ws: WsClient = await ws_for(alice, legacy=legacy)
    room = await send(http, alice, "ws room")
    dm = await send(http, bob, "ws dm", to=alice.username)

    created = await ws.request(
        {"type": "create_conversation", "title": "ws", "description": "d", "message_ids": [room]}
    )
    assert created["type"] == "conversation_created"
    conv = created["conversation"]
    assert set(conv) == CONVERSATION_KEYS
    assert (conv["title"], conv["message_ids"], conv["created_by_username"]) == (
        "ws",
        [room],
        alice.username,
    )
    assert (await get(http, alice, conv["id"])).json() == conv  # the same as REST shows

    page = await ws.request({"type": "get_conversations"})
    assert page["type"] == "conversations"
    assert page["conversations"] == [conv]
    assert page["pagination"] == {"total": 1, "offset": 0, "limit": 50, "has_more": False}
    page = await ws.request({"type": "get_conversations", "limit": 1, "offset": 1})
    assert (page["conversations"], page["pagination"]["total"]) == ([], 1)

    found = await ws.request({"type": "get_conversation", "conversation_id": conv["id"]})
    assert (found["type"], found["conversation"]) == ("conversation", conv)

    updated = await ws.request(
        {"type": "update_conversation", "conversation_id": conv["id"], "message_ids": [dm, room]}
    )
    assert updated["type"] == "conversation_updated"
    assert updated["conversation"] == {**conv, "message_ids": [dm, room]}
    unchanged = await ws.request({"type": "update_conversation", "conversation_id": conv["id"]})
    assert unchanged["conversation"] == updated["conversation"]

    deleted = await ws.request({"type": "delete_conversation", "conversation_id": conv["id"]})
    assert deleted == {
        "type": "conversation_deleted",
        "conversation_id": conv["id"],
        "request_id": deleted["request_id"],
    }
    gone = await ws_error(ws, {"type": "get_conversation", "conversation_id": conv["id"]})
    assert (gone["error"], gone["code"]) == (
        f"Conversation {conv['id']} not found",
        "conversation_not_found",
    )


async def test_ws_a_bad_message_id_rejects_the_whole_request(
    http: httpx.AsyncClient, people: dict[str, Account], ws_for: Callable[..., Any]
) -> None:
    """Upstream sent an error frame and then saved the conversation with the bad id anyway,
    followed by ``conversation_created`` (gap 11)."""
    alice, carol, dave = people["alice"], people["carol"], people["dave"]
    ws: WsClient = await ws_for(alice)
    room = await send(http, alice, "ws kept")
    others_dm = await send(http, carol, "ws private", to=dave.username)
    missing = str(uuid.uuid4())

    for ids, bad in (([room, missing], missing), ([others_dm, room], others_dm)):
        reply = await ws_error(ws, {"type": "create_conversation", "message_ids": ids})
        assert (reply["error"], reply["code"]) == (f"Message {bad} not found", "message_not_found")
    reply = await ws_error(ws, {"type": "create_conversation", "message_ids": [room, "zzz"]})
    assert (reply["error"], reply["code"]) == ("Invalid message ID format", "invalid_id")
    page = await ws.request({"type": "get_conversations"})
    assert page["pagination"]["total"] == 0
    assert not [f for f in ws.seen if f.get("type") == "conversation_created"]

    created = await ws.request({"type": "create_conversation", "title": "t", "message_ids": [room]})
    conv = created["conversation"]
    for ids in ([room, missing], [others_dm], ["zzz"]):
        await ws_error(
            ws,
            {
                "type": "update_conversation",
                "conversation_id": conv["id"],
                "title": "changed",
                "message_ids": ids,
            },
        )
    assert not [f for f in ws.seen if f.get("type") == "conversation_updated"]
    assert (await get(http, alice, conv["id"])).json() == conv


@pytest.mark.parametrize(
    ("frame", "code", "text"),
    [
        ({"type": "create_conversation", "message_ids": [1]}, "invalid_frame", "message_ids"),
        ({"type": "create_conversation", "message_ids": "x"}, "invalid_frame", "message_ids"),
        ({"type": "create_conversation", "title": ""}, "invalid_frame", "title"),
        ({"type": "create_conversation", "title": "t" * 201}, "invalid_frame", "title"),
        ({"type": "create_conversation", "description": 5}, "invalid_frame", "description"),
        (
            {"type": "create_conversation", "message_ids": [str(uuid.uuid4())] * 1001},
            "invalid_frame",
            "message_ids",
        ),
        ({"type": "get_conversations", "limit": 101}, "invalid_frame", "limit"),
        ({"type": "get_conversations", "limit": 0}, "invalid_frame", "limit"),
        ({"type": "get_conversations", "offset": -1}, "invalid_frame", "offset"),
        ({"type": "get_conversations", "limit": "5"}, "invalid_frame", "limit"),
        ({"type": "get_conversation"}, "missing_field", "Missing conversation_id field"),
        ({"type": "get_conversation", "conversation_id": ""}, "missing_field", "Missing"),
        ({"type": "get_conversation", "conversation_id": 7}, "invalid_frame", "conversation_id"),
        ({"type": "update_conversation", "title": "t"}, "missing_field", "Missing"),
        ({"type": "delete_conversation"}, "missing_field", "Missing conversation_id field"),
        (
            {"type": "delete_conversation", "conversation_id": "nope"},
            "conversation_not_found",
            "Conversation nope not found",
        ),
    ],
)
async def test_ws_bad_frames_get_error_frames_and_the_connection_stays(
    people: dict[str, Account],
    ws_for: Callable[..., Any],
    frame: Frame,
    code: str,
    text: str,
) -> None:
    ws: WsClient = await ws_for(people["alice"])
    reply = await ws_error(ws, frame)
    assert reply["code"] == code
    assert text in reply["error"]
    # Nothing was stored, and the connection still answers.
    page = await ws.request({"type": "get_conversations"})
    assert page["pagination"]["total"] == 0


async def test_ws_permissions(
    http: httpx.AsyncClient,
    live_server: LiveServer,
    people: dict[str, Account],
    ws_for: Callable[..., Any],
) -> None:
    alice, bob, viewer = people["alice"], people["bob"], people["viewer"]
    room = await send(http, alice, "ws perms")
    dm = await send(http, alice, "ws perms dm", to=bob.username)
    conv = await create(http, alice, title="alice's", message_ids=[room, dm])
    target = {"conversation_id": conv["id"]}

    bob_ws: WsClient = await ws_for(bob)
    for frame, text in (
        ({"type": "get_conversation", **target}, "You can only view your own conversations"),
        (
            {"type": "update_conversation", **target, "title": "x"},
            "You can only update your own conversations",
        ),
        ({"type": "delete_conversation", **target}, "You can only delete your own conversations"),
    ):
        reply = await ws_error(bob_ws, frame)
        assert (reply["error"], reply["code"]) == (text, "permission_denied")

    viewer_ws: WsClient = await ws_for(viewer)
    found = await viewer_ws.request({"type": "get_conversation", **target})
    assert found["conversation"] == {**conv, "message_ids": [room]}
    listed = await viewer_ws.request({"type": "get_conversations", "limit": 100})
    assert {**conv, "message_ids": [room]} in listed["conversations"]
    reply = await ws_error(viewer_ws, {"type": "delete_conversation", **target})
    assert reply["code"] == "permission_denied"

    # Admins delete any conversation over WebSocket (PROTOCOL.md 3.6).
    admin_ws: WsClient = await ws_for(live_server.admin)
    reply = await admin_ws.request({"type": "delete_conversation", **target})
    assert (reply["type"], reply["conversation_id"]) == ("conversation_deleted", conv["id"])
    assert (await get(http, alice, conv["id"])).status_code == 404
