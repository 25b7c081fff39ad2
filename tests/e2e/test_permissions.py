"""Every permission boundary in one table: role x (REST endpoint, WebSocket frame) -> allowed
or refused, run against a real server over each transport the operation has.

Each case gets a fresh actor of the role, made as a member (so it owns a message, sent
before its role changed) and then given the role by the server's admin. Targets owned by
someone else (a message, a DM between two others, a conversation, a bot) are made fresh as
well. "Refused" means 403 with ``permission_denied`` / ``admin_required`` over REST and an
``error`` frame with one of those codes over WebSocket; "allowed" means the operation's
success answer. Anything else fails the test, so a row cannot pass by accident.

Rows whose answer is not a status (who sees another pair's DM, who can be sent a DM, who is
listed) carry their own verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import Account, LiveServer
from tests.wsclient import Frame, WsClient

ROLES = ("admin", "member", "viewer", "bot")
REFUSAL_CODES = {"permission_denied", "admin_required"}
EVERYONE = frozenset(ROLES)
SENDERS = frozenset({"admin", "member", "bot"})
PEOPLE = frozenset({"admin", "member"})
ADMIN = frozenset({"admin"})
NOBODY: frozenset[str] = frozenset()


def _auth(account: Account) -> dict[str, str]:
    return {"X-API-Key": account.api_key}


@dataclass
class Case:
    """One actor and the targets a row needs, made on demand."""

    server: LiveServer
    http: httpx.Client
    role: str
    actor: Account
    own_message: str
    _made: dict[str, Any] = field(default_factory=dict)

    def call(self, who: Account, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, path, headers=_auth(who), json=body)

    def ok(self, who: Account, method: str, path: str, body: Any = None) -> Any:
        resp = self.call(who, method, path, body)
        assert resp.status_code < 300, (method, path, resp.text)
        return resp.json() if resp.content else None

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    @property
    def other(self) -> Account:
        """A member who owns the targets."""
        return self._once("other", lambda: member(self.server))

    @property
    def third(self) -> Account:
        return self._once("third", lambda: member(self.server))

    @property
    def others_message(self) -> str:
        return self._once(
            "others_message",
            lambda: self.ok(self.other, "POST", "/messages", {"content": "theirs"})["id"],
        )

    @property
    def others_dm(self) -> str:
        """A DM between two users, neither of them the actor."""
        body = {"content": "between others", "to_username": self.third.username}
        return self._once("others_dm", lambda: self.ok(self.other, "POST", "/messages", body)["id"])

    @property
    def others_conversation(self) -> str:
        return self._once(
            "conversation",
            lambda: self.ok(self.other, "POST", "/conversations", {"title": "theirs"})["id"],
        )

    @property
    def others_bot(self) -> str:
        name = self.server.unique("pbot")
        return self._once(
            "bot", lambda: self.ok(self.other, "POST", "/bots", {"username": name})["id"]
        )


def member(server: LiveServer) -> Account:
    return server.register(server.unique("perm"))


def make_case(server: LiveServer, http: httpx.Client, role: str) -> Case:
    actor = member(server)
    own = http.post("/messages", headers=_auth(actor), json={"content": "my own"})
    assert own.status_code == 201, own.text
    if role != "member":
        resp = http.patch(
            f"/admin/users/{actor.id}/role", headers=_auth(server.admin), json={"role": role}
        )
        assert resp.status_code == 200, resp.text
    return Case(server, http, role, actor, own.json()["id"])


# A REST operation: (method, path, body) from the case; a WebSocket one: the frame.
Rest = Callable[[Case], tuple[str, str, Any]]
Ws = Callable[[Case], Frame]
# A verdict replaces the default reading of the answer: True allowed, False refused.
RestVerdict = Callable[[Case, httpx.Response], bool]
WsVerdict = Callable[[Case, Frame], bool]


@dataclass(frozen=True)
class Row:
    name: str
    allowed: frozenset[str]
    rest: Rest | None = None
    ws: Ws | None = None
    rest_verdict: RestVerdict | None = None
    ws_verdict: WsVerdict | None = None
    # Statuses that mean "allowed" besides 2xx (invitations answer 503: not configured).
    also_ok: frozenset[int] = frozenset()


def _sees(message_id: Callable[[Case], str]) -> Callable[[Case, Any], bool]:
    def verdict(case: Case, answer: Any) -> bool:
        body = answer.json() if isinstance(answer, httpx.Response) else answer
        assert "messages" in body, body
        return message_id(case) in [m["id"] for m in body["messages"]]

    return verdict


def _found(resp: httpx.Response) -> bool:
    """Someone else's DM does not exist for the caller: 404, never 403 (which would tell)."""
    assert resp.status_code < 300 or resp.status_code == 404, resp.text
    return resp.status_code < 300


def _found_frame(frame: Frame) -> bool:
    if frame.get("type") == "error":
        assert frame.get("code") == "message_not_found", frame
        return False
    return True


def _dm_to_actor(case: Case, resp: httpx.Response) -> bool:
    assert resp.status_code in (201, 400), resp.text
    if resp.status_code == 400:
        assert resp.json()["code"] == "recipient_is_viewer"
    return resp.status_code == 201


def _listed(case: Case, resp: httpx.Response) -> bool:
    assert resp.status_code == 200
    return case.actor.id in [u["id"] for u in resp.json()]


ROWS: list[Row] = [
    # --- messages ---------------------------------------------------------------------------
    Row(
        "send to the room",
        SENDERS,
        rest=lambda c: ("POST", "/messages", {"content": "hi"}),
        ws=lambda c: {"type": "message", "content": "hi"},
    ),
    Row(
        "send a DM",
        PEOPLE,
        rest=lambda c: ("POST", "/messages", {"content": "psst", "to_username": c.other.username}),
        ws=lambda c: {"type": "message", "content": "psst", "to_username": c.other.username},
    ),
    Row(
        "type in the room",
        SENDERS,
        ws=lambda c: {"type": "typing"},
    ),
    Row(
        "type to someone",
        PEOPLE,
        ws=lambda c: {"type": "typing", "to_username": c.other.username},
    ),
    Row(
        "read room history",
        EVERYONE,
        rest=lambda c: ("GET", "/messages", None),
        ws=lambda c: {"type": "get_messages"},
    ),
    Row(
        "see a DM between two others in DM history",
        NOBODY,
        rest=lambda c: ("GET", "/messages/direct?limit=1000", None),
        ws=lambda c: {"type": "get_direct_messages", "limit": 1000},
        rest_verdict=_sees(lambda c: c.others_dm),
        ws_verdict=_sees(lambda c: c.others_dm),
    ),
    Row(
        "read unread counts",
        EVERYONE,
        rest=lambda c: ("GET", "/messages/unread/count", None),
        ws=lambda c: {"type": "get_unread_count"},
    ),
    Row(
        "mark everything read",
        EVERYONE,
        rest=lambda c: ("POST", "/messages/mark-all-read", None),
        ws=lambda c: {"type": "mark_all_read"},
    ),
    Row(
        "list users",
        EVERYONE,
        rest=lambda c: ("GET", "/users", None),
        ws=lambda c: {"type": "get_users"},
    ),
    Row(
        "read unread lists",
        EVERYONE,
        rest=lambda c: ("GET", "/messages/unread", None),
        ws=lambda c: {"type": "get_unread_messages"},
    ),
    Row(
        "read unread DMs",
        EVERYONE,
        rest=lambda c: ("GET", "/messages/direct/unread", None),
        ws=lambda c: {"type": "get_unread_direct_messages"},
    ),
    Row(
        "mark a room message read",
        EVERYONE,
        rest=lambda c: ("POST", f"/messages/{c.others_message}/read", None),
        ws=lambda c: {"type": "mark_read", "message_id": c.others_message},
    ),
    Row("mark the room read", EVERYONE, ws=lambda c: {"type": "mark_room_read"}),
    Row(
        "mark someone's DMs read",
        EVERYONE,
        ws=lambda c: {"type": "mark_direct_read", "from_username": c.other.username},
    ),
    Row(
        "mark a DM between two others read",
        NOBODY,
        rest=lambda c: ("POST", f"/messages/{c.others_dm}/read", None),
        ws=lambda c: {"type": "mark_read", "message_id": c.others_dm},
        rest_verdict=lambda c, r: _found(r),
        ws_verdict=lambda c, f: _found_frame(f),
    ),
    Row(
        "get a room message",
        EVERYONE,
        rest=lambda c: ("GET", f"/messages/{c.others_message}", None),
    ),
    Row(
        "get a DM between two others",
        NOBODY,
        rest=lambda c: ("GET", f"/messages/{c.others_dm}", None),
        rest_verdict=lambda c, r: _found(r),
    ),
    Row(
        "read who read my messages", EVERYONE, rest=lambda c: ("GET", "/messages/read-marks", None)
    ),
    Row(
        "list online users",
        EVERYONE,
        rest=lambda c: ("GET", "/users/online", None),
        ws=lambda c: {"type": "get_online_users"},
    ),
    Row(
        "read a profile",
        EVERYONE,
        rest=lambda c: ("GET", f"/users/{c.other.id}", None),
        ws=lambda c: {"type": "get_user_profile", "username": c.other.username},
    ),
    Row("read own profile", EVERYONE, rest=lambda c: ("GET", "/users/me", None)),
    Row("ping", EVERYONE, ws=lambda c: {"type": "ping"}),
    # --- receiving: the row's role is the recipient's, or the listed user's ----------------
    Row(
        "be sent a DM",
        SENDERS,
        rest=lambda c: ("DM", "", None),
        rest_verdict=_dm_to_actor,
    ),
    Row(
        "be listed in GET /users",
        SENDERS,
        rest=lambda c: ("GET", "/users", None),
        rest_verdict=_listed,
    ),
    # --- own profile ------------------------------------------------------------------------
    Row(
        "change own logo",
        SENDERS,
        rest=lambda c: ("PATCH", "/users/me/logo", {"logo": None}),
    ),
    Row(
        "change own webhook",
        SENDERS,
        rest=lambda c: ("PATCH", "/users/me/webhook", {"webhook_url": None}),
    ),
    Row(
        "change own username",
        SENDERS,
        rest=lambda c: ("PATCH", "/users/me/username", {"username": c.server.unique("re")}),
    ),
    Row(
        "rotate own webhook secret",
        SENDERS,
        rest=lambda c: ("POST", "/users/me/webhook/secret", None),
        also_ok=frozenset({400}),  # 400: no webhook set, which is the actor's case
    ),
    Row(
        "read own webhook deliveries",
        EVERYONE,
        rest=lambda c: ("GET", "/users/me/webhook/deliveries", None),
    ),
    Row(
        "rotate own API key",
        EVERYONE,
        rest=lambda c: ("POST", "/users/me/regenerate-api-key", None),
    ),
    # --- edits and deletes ------------------------------------------------------------------
    Row(
        "edit own message",
        SENDERS,
        rest=lambda c: ("PATCH", f"/messages/{c.own_message}", {"content": "edited"}),
        ws=lambda c: {"type": "edit_message", "message_id": c.own_message, "content": "edited"},
    ),
    Row(
        "delete own message",
        SENDERS,
        rest=lambda c: ("DELETE", f"/messages/{c.own_message}", None),
        ws=lambda c: {"type": "delete_message", "message_id": c.own_message},
    ),
    Row(
        "edit someone else's message",
        ADMIN,
        rest=lambda c: ("PATCH", f"/messages/{c.others_message}", {"content": "x"}),
        ws=lambda c: {"type": "edit_message", "message_id": c.others_message, "content": "x"},
    ),
    Row(
        "delete someone else's message",
        ADMIN,
        rest=lambda c: ("DELETE", f"/messages/{c.others_message}", None),
        ws=lambda c: {"type": "delete_message", "message_id": c.others_message},
    ),
    # --- admin ------------------------------------------------------------------------------
    Row("list every account", ADMIN, rest=lambda c: ("GET", "/admin/users", None)),
    Row("get an account", ADMIN, rest=lambda c: ("GET", f"/admin/users/{c.other.id}", None)),
    Row(
        "update an account",
        ADMIN,
        rest=lambda c: ("PATCH", f"/admin/users/{c.other.id}", {"emoji": "🛠"}),
    ),
    Row(
        "change a role",
        ADMIN,
        rest=lambda c: ("PATCH", f"/admin/users/{c.other.id}/role", {"role": "viewer"}),
    ),
    Row("delete an account", ADMIN, rest=lambda c: ("DELETE", f"/admin/users/{c.other.id}", None)),
    Row(
        "see live connections",
        ADMIN,
        rest=lambda c: ("GET", "/admin/websocket/connections", None),
    ),
    Row(
        "invite by email",
        ADMIN,
        rest=lambda c: (
            "POST",
            "/admin/invite",
            {"email": "x@example.com", "signup_url": "https://example.com/"},
        ),
        also_ok=frozenset({503}),
    ),
    Row(
        "get any message as admin",
        ADMIN,
        rest=lambda c: ("GET", f"/admin/messages/{c.others_dm}", None),
    ),
    Row(
        "edit any message as admin",
        ADMIN,
        rest=lambda c: ("PATCH", f"/admin/messages/{c.others_dm}", {"content": "moderated"}),
    ),
    Row(
        "delete any message as admin",
        ADMIN,
        rest=lambda c: ("DELETE", f"/admin/messages/{c.others_dm}", None),
    ),
    Row(
        "delete any conversation as admin",
        ADMIN,
        rest=lambda c: ("DELETE", f"/admin/conversations/{c.others_conversation}", None),
        ws=lambda c: {"type": "delete_conversation", "conversation_id": c.others_conversation},
    ),
    # --- conversations ----------------------------------------------------------------------
    Row(
        "create a conversation",
        EVERYONE,
        rest=lambda c: ("POST", "/conversations", {"title": "mine"}),
        ws=lambda c: {"type": "create_conversation", "title": "mine"},
    ),
    Row(
        "list own conversations",
        EVERYONE,
        rest=lambda c: ("GET", "/conversations", None),
        ws=lambda c: {"type": "get_conversations"},
    ),
    Row(
        "read someone else's conversation",
        frozenset({"viewer"}),
        rest=lambda c: ("GET", f"/conversations/{c.others_conversation}", None),
        ws=lambda c: {"type": "get_conversation", "conversation_id": c.others_conversation},
    ),
    Row(
        "update someone else's conversation",
        NOBODY,
        rest=lambda c: ("PATCH", f"/conversations/{c.others_conversation}", {"title": "x"}),
        ws=lambda c: {
            "type": "update_conversation",
            "conversation_id": c.others_conversation,
            "title": "x",
        },
    ),
    Row(
        # Upstream refused admins here (they had only the admin path); ours takes both.
        "delete someone else's conversation through the owner's endpoint",
        ADMIN,
        rest=lambda c: ("DELETE", f"/conversations/{c.others_conversation}", None),
    ),
    # --- bots -------------------------------------------------------------------------------
    Row(
        "create a bot",
        PEOPLE,
        rest=lambda c: ("POST", "/bots", {"username": c.server.unique("mybot")}),
    ),
    Row("list own bots", EVERYONE, rest=lambda c: ("GET", "/bots/me", None)),
    Row(
        "update someone else's bot",
        ADMIN,
        rest=lambda c: ("PATCH", f"/bots/{c.others_bot}", {"emoji": "🤖"}),
    ),
    Row(
        "rotate someone else's bot's key",
        ADMIN,
        rest=lambda c: ("POST", f"/bots/{c.others_bot}/regenerate-api-key", None),
    ),
    Row(
        "delete someone else's bot", ADMIN, rest=lambda c: ("DELETE", f"/bots/{c.others_bot}", None)
    ),
]


def _cases() -> list[Any]:
    cases = []
    for row in ROWS:
        for transport, op in (("rest", row.rest), ("ws", row.ws)):
            if op is None:
                continue
            cases.append(pytest.param(row, transport, id=f"{row.name} [{transport}]"))
    return cases


def _rest_allowed(case: Case, row: Row) -> bool:
    assert row.rest is not None
    method, path, body = row.rest(case)
    if method == "DM":  # "be sent a DM": someone else sends to the actor
        resp = case.call(
            case.other,
            "POST",
            "/messages",
            {"content": "to you", "to_username": case.actor.username},
        )
    else:
        resp = case.call(case.actor, method, path, body)
    if row.rest_verdict is not None:
        return row.rest_verdict(case, resp)
    if resp.status_code == 403:
        assert resp.json()["code"] in REFUSAL_CODES, resp.text
        return False
    assert resp.status_code < 300 or resp.status_code in row.also_ok, (method, path, resp.text)
    return True


async def _ws_allowed(case: Case, row: Row) -> bool:
    assert row.ws is not None
    frame = row.ws(case)  # targets are made before connecting
    ws = await WsClient.connect(case.server.ws_url, case.actor.api_key)
    try:
        await ws.recv_until(lambda f: f.get("type") == "hello", timeout=10)
        if frame["type"] == "typing":
            # No reply when allowed: a ping sent after it answers first unless an error came.
            await ws.send({**frame, "request_id": "t"})
            reply = await ws.request({"type": "ping"}, timeout=10)
            refusal = next((f for f in ws.seen if f.get("request_id") == "t"), None)
            if refusal is None:
                assert reply["type"] == "pong"
                return True
            assert refusal["type"] == "error" and refusal["code"] in REFUSAL_CODES, refusal
            return False
        reply = await ws.request(frame, timeout=10)
    finally:
        await ws.close()
    if row.ws_verdict is not None:
        return row.ws_verdict(case, reply)
    if reply.get("type") == "error":
        assert reply.get("code") in REFUSAL_CODES, reply
        return False
    return True


@pytest.mark.parametrize(("row", "transport"), _cases())
def test_permission_table(live_server: LiveServer, row: Row, transport: str) -> None:
    verdicts: dict[str, bool] = {}
    with httpx.Client(base_url=live_server.http_url, timeout=30) as http:
        for role in ROLES:
            case = make_case(live_server, http, role)
            if transport == "rest":
                verdicts[role] = _rest_allowed(case, row)
            else:
                verdicts[role] = asyncio.run(_ws_allowed(case, row))
    expected = {role: role in row.allowed for role in ROLES}
    assert verdicts == expected, f"{row.name} over {transport}"


def test_every_role_is_in_the_table() -> None:
    from token_bowl_chat.protocol.models import Role

    assert set(ROLES) == {role.value for role in Role}
