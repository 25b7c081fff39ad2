"""The admin's account endpoints (PROTOCOL.md 4.8) on a real server, and what their changes
do to open sockets: a deleted account's sockets close with 1008 at once, a changed role holds
from the next frame on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Account, LiveServer
from tests.wsclient import WsClient, is_delivery


def auth(account: Account) -> dict[str, str]:
    return {"X-API-Key": account.api_key}


def admin_call(
    server: LiveServer, method: str, path: str, actor: Account | None = None, **kwargs: Any
) -> httpx.Response:
    return httpx.request(
        method, f"{server.http_url}{path}", headers=auth(actor or server.admin), **kwargs
    )


def set_role(server: LiveServer, who: Account, role: str, actor: Account | None = None) -> Any:
    resp = admin_call(server, "PATCH", f"/admin/users/{who.id}/role", actor, json={"role": role})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def wait_closed(ws: WsClient, timeout: float = 10.0) -> int | None:
    async with asyncio.timeout(timeout):
        await ws.conn.wait_closed()
    return ws.conn.close_code


# --- reading accounts -----------------------------------------------------------------------


def test_admin_lists_every_account_oldest_first_with_masked_keys(live_server: LiveServer) -> None:
    member = live_server.register()
    viewer = live_server.register(role="viewer")
    listed = admin_call(live_server, "GET", "/admin/users").json()
    names = [u["username"] for u in listed]
    assert names.index(live_server.admin.username) < names.index(member.username)
    assert names.index(member.username) < names.index(viewer.username)  # viewers included
    created = [u["created_at"] for u in listed]
    assert created == sorted(created)
    mine = next(u for u in listed if u["id"] == viewer.id)
    assert (mine["role"], mine["viewer"], mine["admin"]) == ("viewer", True, False)
    assert viewer.api_key not in str(listed) and mine["api_key"].endswith(viewer.api_key[-4:])

    one = admin_call(live_server, "GET", f"/admin/users/{member.id.upper()}")
    assert one.status_code == 200 and one.json()["username"] == member.username


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/users", None),
        ("GET", "/admin/users/{id}", None),
        ("PATCH", "/admin/users/{id}", {"emoji": "x"}),
        ("DELETE", "/admin/users/{id}", None),
        ("GET", "/admin/websocket/connections", None),
        ("POST", "/admin/invite", {"email": "a@example.com", "signup_url": "https://x"}),
    ],
)
def test_non_admins_get_admin_privileges_required(
    live_server: LiveServer, method: str, path: str, body: Any
) -> None:
    target = live_server.register()
    for role in ("member", "viewer"):
        caller = live_server.register(role=role)
        resp = admin_call(live_server, method, path.format(id=target.id), caller, json=body)
        assert resp.status_code == 403, resp.text
        assert resp.json() == {"detail": "Admin privileges required", "code": "admin_required"}
    # Before the body is validated, as upstream answers.
    if body is not None:
        resp = admin_call(live_server, method, path.format(id=target.id), caller, content=b"{nope")
        assert resp.status_code == 403
    assert admin_call(live_server, "GET", f"/admin/users/{target.id}").json()["emoji"] is None


def test_the_role_endpoint_answers_with_the_permission_text(live_server: LiveServer) -> None:
    member, target = live_server.register(), live_server.register()
    resp = admin_call(
        live_server, "PATCH", f"/admin/users/{target.id}/role", member, json={"role": "admin"}
    )
    assert resp.status_code == 403
    assert resp.json() == {
        "detail": "Permission 'users:assign_roles' required. "
        "Your role 'member' does not have this permission.",
        "code": "permission_denied",
    }
    assert admin_call(live_server, "GET", f"/admin/users/{target.id}").json()["role"] == "member"


def test_bad_ids_unknown_users_and_unknown_roles_change_nothing(live_server: LiveServer) -> None:
    target = live_server.register()
    for method, path, body in [
        ("GET", "/admin/users/not-a-uuid", None),
        ("PATCH", "/admin/users/not-a-uuid", {"emoji": "x"}),
        ("DELETE", "/admin/users/not-a-uuid", None),
        ("PATCH", "/admin/users/not-a-uuid/role", {"role": "member"}),
    ]:
        resp = admin_call(live_server, method, path, json=body)
        assert resp.status_code == 400, (path, resp.text)
        assert resp.json() == {"detail": "Invalid user ID format: not-a-uuid", "code": "invalid_id"}

    missing = "00000000-0000-4000-8000-000000000000"
    for method, path, body in [
        ("GET", f"/admin/users/{missing}", None),
        ("PATCH", f"/admin/users/{missing}", {"emoji": "x"}),
        ("DELETE", f"/admin/users/{missing}", None),
        ("PATCH", f"/admin/users/{missing}/role", {"role": "member"}),
    ]:
        resp = admin_call(live_server, method, path, json=body)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json() == {"detail": f"User {missing} not found", "code": "user_not_found"}

    resp = admin_call(
        live_server, "PATCH", f"/admin/users/{target.id}/role", json={"role": "superuser"}
    )
    assert resp.status_code == 422 and resp.json()["code"] == "validation_error"
    resp = admin_call(live_server, "PATCH", f"/admin/users/{target.id}", json={"role": "root"})
    assert resp.status_code == 422
    resp = admin_call(live_server, "PATCH", f"/admin/users/{target.id}", json={"nothing": 1})
    assert resp.status_code == 400
    assert resp.json()["detail"].startswith("No valid fields provided to update.")
    assert admin_call(live_server, "GET", f"/admin/users/{target.id}").json()["role"] == "member"


# --- changing accounts ----------------------------------------------------------------------


def test_admin_update_sets_clears_and_resolves_roles(live_server: LiveServer) -> None:
    target = live_server.register(logo="claude-color.png")
    path = f"/admin/users/{target.id}"

    def patch(body: dict[str, Any]) -> httpx.Response:
        return admin_call(live_server, "PATCH", path, json=body)

    body = patch({"email": "t@example.com", "emoji": "🦊"}).json()
    assert (body["email"], body["emoji"], body["logo"]) == (
        "t@example.com",
        "🦊",
        "claude-color.png",
    )
    # null clears (upstream could not clear anything); absent fields stay.
    body = patch({"email": None}).json()
    assert (body["email"], body["emoji"]) == (None, "🦊")
    # A legacy flag set to true sets the role; set to false it takes the role away.
    assert patch({"viewer": True}).json()["role"] == "viewer"
    assert patch({"viewer": False}).json()["role"] == "member"
    assert patch({"admin": False}).json()["role"] == "member"  # not an admin: no change
    # ``role`` is taken (upstream ignored it); a bot keeps no logo.
    body = patch({"role": "bot"}).json()
    assert (body["role"], body["bot"], body["logo"]) == ("bot", True, None)
    resp = patch({"logo": "claude-color.png"})
    assert resp.status_code == 400 and "emoji" in resp.json()["detail"]
    assert patch({"bot": True, "logo": "claude-color.png"}).status_code == 422
    assert patch({"role": "member"}).json()["role"] == "member"

    other = live_server.register()
    resp = patch({"username": other.username})
    assert resp.status_code == 409 and resp.json()["code"] == "username_taken"
    assert patch({"username": target.username}).status_code == 200  # unchanged: fine


@pytest.mark.single_node(
    reason="the open socket sends under the new name from the next frame on one process; "
    "another node hears of the rename through Redis a moment later"
)
async def test_an_admin_rename_works_like_a_self_rename(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    async with httpx.AsyncClient(base_url=live_server.http_url) as client:
        old = (
            await client.post("/messages", headers=auth(alice), json={"content": "before"})
        ).json()
        ws_alice = await WsClient.connect(live_server.ws_url, alice.api_key)
        ws_bob = await WsClient.connect(live_server.ws_url, bob.api_key)
        try:
            await ws_alice.recv_until(lambda f: f.get("type") == "hello")
            await ws_bob.recv_until(lambda f: f.get("type") == "hello")
            new_name = live_server.unique("renamed")
            resp = await client.patch(
                f"/admin/users/{alice.id}",
                headers=auth(live_server.admin),
                json={"username": new_name},
            )
            assert resp.status_code == 200 and resp.json()["username"] == new_name
            # Old messages show the new name, with their author's id (upstream orphaned them).
            got = (await client.get(f"/messages/{old['id']}", headers=auth(bob))).json()
            assert (got["from_username"], got["from_user_id"]) == (new_name, alice.id)
            # The open socket sends under the new name ...
            sent = await ws_alice.request({"type": "message", "content": "after"})
            assert sent["message"]["from_username"] == new_name
            seen = await ws_bob.recv_until(lambda f: is_delivery(f) and f["content"] == "after")
            assert seen["from_user_id"] == alice.id
            # ... and a DM to the new name reaches it.
            dm = await client.post(
                "/messages", headers=auth(bob), json={"content": "psst", "to_username": new_name}
            )
            assert dm.status_code == 201
            await ws_alice.recv_until(lambda f: is_delivery(f) and f["content"] == "psst")
        finally:
            await ws_alice.close()
            await ws_bob.close()


@pytest.mark.single_node(
    reason="'the next frame' is one process's promise: another node hears of the change "
    "through Redis a moment later (tests/scaleout/test_cross_node.py)"
)
async def test_a_role_change_holds_on_open_sockets_from_the_next_frame(
    live_server: LiveServer,
) -> None:
    member = live_server.register()
    extended = await WsClient.connect(live_server.ws_url, member.api_key)
    legacy = await WsClient.connect(live_server.ws_url, member.api_key, legacy=True)
    try:
        await extended.recv_until(lambda f: f.get("type") == "hello")
        assert (await extended.request({"type": "message", "content": "m1"}))["type"] == (
            "message_sent"
        )
        await asyncio.to_thread(set_role, live_server, member, "viewer")
        # No reconnect: the very next frame on either socket is refused.
        for ws in (extended, legacy):
            reply = await ws.request({"type": "message", "content": "as viewer"})
            assert reply["type"] == "error" and reply["code"] == "permission_denied", reply
            assert "viewer" in reply["error"]
        await asyncio.to_thread(set_role, live_server, member, "member")
        reply = await legacy.request({"type": "message", "content": "member again"})
        assert reply["type"] == "message_sent", reply
        # Promoted to admin, the socket may now do admin things (delete a message) only if
        # that command exists; the REST check reads the account fresh every time.
        await asyncio.to_thread(set_role, live_server, member, "admin")
        resp = admin_call(live_server, "GET", "/admin/users", member)
        assert resp.status_code == 200
        await asyncio.to_thread(set_role, live_server, member, "member")
        assert admin_call(live_server, "GET", "/admin/users", member).status_code == 403
    finally:
        await extended.close()
        await legacy.close()
    history = httpx.get(
        f"{live_server.http_url}/messages", headers=auth(member), params={"limit": 1000}
    ).json()["messages"]
    contents = {m["content"] for m in history if m["from_user_id"] == member.id}
    assert contents == {"m1", "member again"}


async def test_deleting_a_user_closes_its_sockets_and_keeps_its_messages(
    live_server: LiveServer,
) -> None:
    doomed, bob = live_server.register(), live_server.register()
    async with httpx.AsyncClient(base_url=live_server.http_url) as client:
        room = (
            await client.post("/messages", headers=auth(doomed), json={"content": "mine"})
        ).json()
        dm = (
            await client.post(
                "/messages",
                headers=auth(doomed),
                json={"content": "dm", "to_username": bob.username},
            )
        ).json()
        sockets = [
            await WsClient.connect(live_server.ws_url, doomed.api_key),
            await WsClient.connect(live_server.ws_url, doomed.api_key, legacy=True),
        ]
        await sockets[0].recv_until(lambda f: f.get("type") == "hello")
        resp = await client.delete(f"/admin/users/{doomed.id}", headers=auth(live_server.admin))
        assert resp.status_code == 204 and resp.content == b""
        assert [await wait_closed(ws) for ws in sockets] == [1008, 1008]

        assert (await client.get("/users/me", headers=auth(doomed))).status_code == 401
        again = await client.delete(f"/admin/users/{doomed.id}", headers=auth(live_server.admin))
        assert again.status_code == 404 and again.json()["code"] == "user_not_found"

        # Messages stay under the name they were sent with, and nobody who takes the name
        # later becomes their author (upstream looked authors up by name).
        impostor = live_server.register(doomed.username)
        got = (await client.get(f"/messages/{room['id']}", headers=auth(bob))).json()
        assert (got["from_username"], got["from_user_id"]) == (doomed.username, "")
        got = (await client.get(f"/messages/{dm['id']}", headers=auth(bob))).json()
        assert (got["content"], got["from_user_id"]) == ("dm", "")
        assert (await client.get(f"/messages/{dm['id']}", headers=auth(impostor))).status_code == (
            404
        )
        unread = (await client.get("/messages/unread/count", headers=auth(bob))).json()
        assert unread["unread_direct_messages"] >= 1


async def test_deleting_a_user_deletes_the_bots_it_created(live_server: LiveServer) -> None:
    owner = live_server.register()
    created = httpx.post(
        f"{live_server.http_url}/bots",
        headers=auth(owner),
        json={"username": live_server.unique("bot")},
    )
    assert created.status_code == 201, created.text
    bot = Account(created.json()["id"], created.json()["username"], created.json()["api_key"])
    ws = await WsClient.connect(live_server.ws_url, bot.api_key)
    try:
        await ws.recv_until(lambda f: f.get("type") == "hello")
        assert admin_call(live_server, "DELETE", f"/admin/users/{owner.id}").status_code == 204
        assert await wait_closed(ws) == 1008
    finally:
        await ws.close()
    assert admin_call(live_server, "GET", f"/admin/users/{bot.id}").status_code == 404
    me = httpx.get(f"{live_server.http_url}/users/me", headers=auth(bot))
    assert me.status_code == 401


# --- the last admin ---------------------------------------------------------------------------


def test_the_last_admin_can_be_neither_demoted_nor_deleted(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    root = server.admin
    refusal = {
        "detail": "Cannot remove the last admin: make another user an admin first",
        "code": "last_admin",
    }
    for method, path, body in [
        ("PATCH", f"/admin/users/{root.id}/role", {"role": "member"}),
        ("PATCH", f"/admin/users/{root.id}", {"admin": False}),
        ("PATCH", f"/admin/users/{root.id}", {"viewer": True}),
        ("DELETE", f"/admin/users/{root.id}", None),
    ]:
        resp = admin_call(server, method, path, json=body)
        assert (resp.status_code, resp.json()) == (409, refusal), (method, path)
    assert admin_call(server, "GET", f"/admin/users/{root.id}").json()["role"] == "admin"

    # With a second admin, either may step down; then the other is the last one.
    deputy = server.register()
    set_role(server, deputy, "admin")
    set_role(server, root, "member", actor=root)
    resp = admin_call(server, "DELETE", f"/admin/users/{deputy.id}", deputy)
    assert resp.status_code == 409 and resp.json()["code"] == "last_admin"
    assert admin_call(server, "GET", "/admin/users", root).status_code == 403


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    make_server: Callable[..., LiveServer],
) -> None:
    """The last-admin check runs inside the write, with the admin rows locked: checked
    before it, both demotions would see two admins and both succeed."""
    server = make_server()
    pair = (server.admin, server.register())
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as client:

        async def demote(actor: Account, target: Account) -> int:
            resp = await client.patch(
                f"/admin/users/{target.id}/role", headers=auth(actor), json={"role": "member"}
            )
            return resp.status_code

        async def admins(actor: Account) -> list[str]:
            users = (await client.get("/admin/users", headers=auth(actor))).json()
            return [u["id"] for u in users if u["role"] == "admin"]

        survivor = pair[0]
        for round_ in range(8):
            other = pair[1] if survivor is pair[0] else pair[0]
            resp = await client.patch(
                f"/admin/users/{other.id}/role", headers=auth(survivor), json={"role": "admin"}
            )
            assert resp.status_code == 200
            results = await asyncio.gather(demote(pair[0], pair[1]), demote(pair[1], pair[0]))
            # One wins; the other is refused as the last admin, or (if it came second to
            # the door) already as a member.
            assert sorted(results) in ([200, 403], [200, 409]), (round_, results)
            survivor = pair[0] if results[0] == 200 else pair[1]
            assert await admins(survivor) == [survivor.id], (round_, results)


# --- live connections -------------------------------------------------------------------------


@pytest.mark.single_node(reason="the connections list is the answering process's")
async def test_connection_statistics_describe_every_open_socket(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    sockets = [
        await WsClient.connect(live_server.ws_url, alice.api_key),
        await WsClient.connect(live_server.ws_url, alice.api_key, legacy=True),
        await WsClient.connect(live_server.ws_url, bob.api_key),
    ]
    try:
        await sockets[2].recv_until(lambda f: f.get("type") == "hello")
        await sockets[0].send({"type": "pong"})
        await sockets[1].request({"type": "ping"})  # a reply: the legacy socket is in, too
        body = admin_call(live_server, "GET", "/admin/websocket/connections").json()
        assert set(body) == {"total_users", "total_connections", "connections"}
        mine = [c for c in body["connections"] if c["username"] in (alice.username, bob.username)]
        assert sorted(c["username"] for c in mine) == sorted(
            [alice.username, alice.username, bob.username]
        )
        assert body["total_connections"] == len(body["connections"]) >= 3
        assert body["total_users"] == len({c["username"] for c in body["connections"]})
        ids = [c["connection_id"] for c in mine]
        assert len(set(ids)) == 3 and all(isinstance(i, int) for i in ids)
        for conn in mine:
            assert set(conn) == {
                "username",
                "connection_id",
                "last_activity",
                "last_pong",
                "seconds_since_activity",
                "seconds_since_pong",
                "is_healthy",
            }
            assert conn["is_healthy"] is True
            assert 0 <= conn["seconds_since_activity"] < 60
            assert conn["last_activity"].endswith("+00:00")
    finally:
        for ws in sockets:
            await ws.close()

    def gone() -> bool:
        body = admin_call(live_server, "GET", "/admin/websocket/connections").json()
        return not any(c["connection_id"] in ids for c in body["connections"])

    for _ in range(100):
        if gone():
            break
        await asyncio.sleep(0.1)
    assert gone()


def test_invitations_are_not_configured(live_server: LiveServer) -> None:
    resp = admin_call(
        live_server,
        "POST",
        "/admin/invite",
        json={"email": "new@example.com", "role": "admin", "signup_url": "https://x/signup"},
    )
    assert resp.status_code == 503
    assert resp.json() == {
        "detail": "Email invitations are not available. Stytch is not configured.",
        "code": "not_configured",
    }
    resp = admin_call(live_server, "POST", "/admin/invite", json={"email": "x"})
    assert resp.status_code == 422
