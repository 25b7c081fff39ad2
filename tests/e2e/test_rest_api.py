"""End-to-end tests of the REST API against a real server process (PROTOCOL.md sections 2-4, 7).

Every test registers its own users. The server is shared by the whole session, so expectations
about shared state (the room, unread counts) are measured relative to values read in the test.
Error cases and malformed input live in ``test_rest_errors.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Account, LiveServer

LOGOS = [
    "claude-color.png",
    "deepseek-color.png",
    "gemini-color.png",
    "gemma-color.png",
    "grok.png",
    "kimi-color.png",
    "mistral-color.png",
    "openai.png",
    "qwen-color.png",
]
ROOM_DESCRIPTION = "This is a message for the fantasy league's group chat."
MESSAGE_KEYS = [
    "id",
    "from_user_id",
    "from_username",
    "from_user_logo",
    "from_user_emoji",
    "from_user_bot",
    "to_user_id",
    "to_username",
    "content",
    "message_type",
    "description",
    "timestamp",
    "seq",
]
PUBLIC_PROFILE_KEYS = {"id", "username", "role", "logo", "emoji", "bot", "viewer"}
PRIVATE_PROFILE_KEYS = {
    "id",
    "username",
    "role",
    "email",
    "api_key",
    "webhook_url",
    "logo",
    "viewer",
    "admin",
    "bot",
    "emoji",
    "created_at",
}
REGISTRATION_KEYS = {
    "id",
    "username",
    "api_key",
    "role",
    "webhook_url",
    "logo",
    "viewer",
    "admin",
    "bot",
    "emoji",
}
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
KEY_RE = re.compile(r"^[0-9a-f]{64}$")


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.http_url, timeout=30.0) as c:
        yield c


def auth(account: Account | str) -> dict[str, str]:
    key = account if isinstance(account, str) else account.api_key
    return {"X-API-Key": key}


def assert_error(resp: httpx.Response, status: int, code: str) -> Any:
    """The response is an error with this status and stable code; returns ``detail``."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"detail", "code"}, body
    assert body["code"] == code, body
    return body["detail"]


def send(client: httpx.Client, sender: Account, content: str, to: str | None = None) -> dict:
    payload: dict[str, Any] = {"content": content}
    if to is not None:
        payload["to_username"] = to
    resp = client.post("/messages", json=payload, headers=auth(sender))
    assert resp.status_code == 201, resp.text
    return resp.json()


def unread_count(client: httpx.Client, account: Account) -> dict[str, int]:
    resp = client.get("/messages/unread/count", headers=auth(account))
    assert resp.status_code == 200, resp.text
    return resp.json()


def mark_all_read(client: httpx.Client, account: Account) -> int:
    resp = client.post("/messages/mark-all-read", headers=auth(account))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"marked_as_read"}
    return int(body["marked_as_read"])


def me(client: httpx.Client, account: Account | str) -> dict:
    resp = client.get("/users/me", headers=auth(account))
    assert resp.status_code == 200, resp.text
    return resp.json()


def masked(api_key: str) -> str:
    return "*" * 60 + api_key[-4:]


def history(client: httpx.Client, account: Account, path: str = "/messages", **params: Any) -> dict:
    resp = client.get(path, params=params, headers=auth(account))
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- health, logos --------------------------------------------------------------------------


def test_health_and_ready(client: httpx.Client) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "healthy"}
    resp = client.get("/ready")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ready"


def test_logos_is_public_and_exact(client: httpx.Client) -> None:
    resp = client.get("/logos")
    assert resp.status_code == 200
    assert resp.json() == LOGOS


def test_cors_preflight_allows_any_origin_and_the_key_header(client: httpx.Client) -> None:
    resp = client.options(
        "/messages",
        headers={
            "Origin": "https://somewhere.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key,content-type",
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] in ("*", "https://somewhere.example")
    allowed = resp.headers["access-control-allow-headers"].lower()
    assert "*" in allowed or "x-api-key" in allowed


# --- registration ---------------------------------------------------------------------------


def test_register_member_returns_key_once(client: httpx.Client, live_server: LiveServer) -> None:
    name = live_server.unique("reg")
    resp = client.post("/register", json={"username": name})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == REGISTRATION_KEYS
    assert UUID_RE.match(body["id"])
    assert KEY_RE.match(body["api_key"])
    assert body["username"] == name
    assert body["role"] == "member"
    assert (body["admin"], body["viewer"], body["bot"]) == (False, False, False)
    assert (body["webhook_url"], body["logo"], body["emoji"]) == (None, None, None)
    # The key works, and /users/me shows only its masked form.
    profile = me(client, body["api_key"])
    assert set(profile) == PRIVATE_PROFILE_KEYS
    assert profile["id"] == body["id"]
    assert profile["api_key"] == masked(body["api_key"])
    assert TIMESTAMP_RE.match(profile["created_at"])


def test_register_with_optional_fields(client: httpx.Client, live_server: LiveServer) -> None:
    name = live_server.unique("opt")
    resp = client.post(
        "/register",
        json={
            "username": name,
            "logo": "openai.png",
            "emoji": "🏈",
            "webhook_url": "http://example.com",
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["logo"] == "openai.png"
    assert body["emoji"] == "🏈"
    assert body["webhook_url"] == "http://example.com/"
    key = body["api_key"]
    # Do not leave a webhook behind on the shared server.
    resp = client.patch("/users/me/webhook", json={"webhook_url": None}, headers=auth(key))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "fields",
    [{"role": "viewer"}, {"viewer": True}, {"viewer": True, "bot": True}],
    ids=["role", "legacy-flag", "viewer-over-bot"],
)
def test_viewer_registration_is_allowed(
    client: httpx.Client, live_server: LiveServer, fields: dict
) -> None:
    resp = client.post("/register", json={"username": live_server.unique("view"), **fields})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["role"] == "viewer"
    assert (body["viewer"], body["admin"], body["bot"]) == (True, False, False)


def test_explicit_role_wins_over_legacy_flags(
    client: httpx.Client, live_server: LiveServer
) -> None:
    resp = client.post(
        "/register",
        json={"username": live_server.unique("mem"), "role": "member", "admin": True},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["role"] == "member"
    assert resp.json()["admin"] is False


@pytest.mark.parametrize(
    "fields",
    [
        {"role": "admin"},
        {"admin": True},
        {"admin": True, "viewer": True},
        {"role": "admin", "viewer": True},
    ],
    ids=["role", "legacy-flag", "flag-over-viewer", "role-over-flag"],
)
def test_registration_never_grants_admin(
    client: httpx.Client, live_server: LiveServer, fields: dict
) -> None:
    name = live_server.unique("adm")
    resp = client.post("/register", json={"username": name, **fields})
    assert_error(resp, 403, "admin_registration_forbidden")
    # Nothing was created: the name is still free.
    resp = client.post("/register", json={"username": name})
    assert resp.status_code == 201, resp.text
    assert resp.json()["role"] == "member"


@pytest.mark.parametrize("fields", [{"role": "bot"}, {"bot": True}], ids=["role", "legacy-flag"])
def test_bots_cannot_register(client: httpx.Client, live_server: LiveServer, fields: dict) -> None:
    name = live_server.unique("bot")
    resp = client.post("/register", json={"username": name, **fields})
    detail = assert_error(resp, 400, "bot_registration_forbidden")
    assert "POST /bots" in detail
    resp = client.post("/register", json={"username": name})
    assert resp.status_code == 201, resp.text


def test_duplicate_username_conflicts_case_sensitively(
    client: httpx.Client, live_server: LiveServer
) -> None:
    account = live_server.register(live_server.unique("Dup"))
    resp = client.post("/register", json={"username": account.username})
    detail = assert_error(resp, 409, "username_taken")
    assert account.username in detail
    resp = client.post("/register", json={"username": account.username.lower()})
    assert resp.status_code == 201, resp.text


def test_username_length_bounds_and_any_characters(
    client: httpx.Client, live_server: LiveServer
) -> None:
    name = (live_server.unique("n") + "-é 🏈 <b>" + "x" * 50)[:50]
    resp = client.post("/register", json={"username": name})
    assert resp.status_code == 201, resp.text
    assert resp.json()["username"] == name
    profile = client.get(f"/users/{resp.json()['id']}", headers=auth(resp.json()["api_key"]))
    assert profile.json()["username"] == name


# --- authentication -------------------------------------------------------------------------


# A fixed id that names nothing: test ids must be the same in every collection (pytest-xdist
# workers each collect and compare them).
_NO_SUCH_ID = "5f0e8c3a-9d4b-4c1e-8a7f-2b6d9e0c4f11"

PROTECTED = [
    ("GET", "/messages", None),
    ("GET", "/messages/direct", None),
    ("GET", "/messages/unread", None),
    ("GET", "/messages/direct/unread", None),
    ("GET", "/messages/unread/count", None),
    ("POST", "/messages", {"content": "hi"}),
    ("POST", "/messages/mark-all-read", None),
    ("POST", f"/messages/{_NO_SUCH_ID}/read", None),
    ("GET", f"/messages/{_NO_SUCH_ID}", None),
    ("GET", "/users", None),
    ("GET", "/users/online", None),
    ("GET", "/users/me", None),
    ("GET", f"/users/{_NO_SUCH_ID}", None),
    ("PATCH", "/users/me/logo", {"logo": None}),
    ("PATCH", "/users/me/webhook", {"webhook_url": None}),
    ("PATCH", "/users/me/username", {"username": "whatever"}),
    ("POST", "/users/me/regenerate-api-key", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED]
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "0" * 64},
        {"X-API-Key": ""},
        {"X-API-Key": "short"},
        {"X-API-Key": "a" * 200},
        {"Authorization": "Bearer " + "0" * 64},
    ],
    ids=["missing", "unknown", "empty", "too-short", "too-long", "bearer-garbage"],
)
def test_protected_endpoints_require_a_key(
    client: httpx.Client, method: str, path: str, body: Any, headers: dict
) -> None:
    resp = client.request(method, path, json=body, headers=headers)
    detail = assert_error(resp, 401, "authentication_required")
    assert detail == "Invalid or missing authentication credentials"
    assert resp.headers["www-authenticate"] == "Bearer"


def test_key_in_query_string_is_not_accepted_on_rest(
    client: httpx.Client, live_server: LiveServer
) -> None:
    account = live_server.register()
    resp = client.get("/users/me", params={"api_key": account.api_key})
    assert_error(resp, 401, "authentication_required")


def test_masked_key_does_not_authenticate(client: httpx.Client, live_server: LiveServer) -> None:
    account = live_server.register()
    shown = me(client, account)["api_key"]
    resp = client.get("/users/me", headers=auth(shown))
    assert_error(resp, 401, "authentication_required")


def test_header_name_is_case_insensitive(client: httpx.Client, live_server: LiveServer) -> None:
    account = live_server.register()
    for name in ("x-api-key", "X-API-KEY"):
        resp = client.get("/users/me", headers={name: account.api_key})
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == account.id


# --- API keys -------------------------------------------------------------------------------


def test_profile_masks_the_key(client: httpx.Client, live_server: LiveServer) -> None:
    account = live_server.register(emoji="🤖", logo="grok.png")
    profile = me(client, account)
    assert profile["api_key"] == masked(account.api_key)
    assert len(profile["api_key"]) == 64
    assert account.api_key not in client.get("/users/me", headers=auth(account)).text
    assert profile["username"] == account.username
    assert profile["role"] == "member"
    assert (profile["logo"], profile["emoji"], profile["email"]) == ("grok.png", "🤖", None)
    assert (profile["admin"], profile["viewer"], profile["bot"]) == (False, False, False)


def test_regenerate_api_key(client: httpx.Client, live_server: LiveServer) -> None:
    account = live_server.register()
    resp = client.post("/users/me/regenerate-api-key", headers=auth(account))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["message"] == "API key regenerated successfully"
    new_key = body["api_key"]
    assert KEY_RE.match(new_key)
    assert new_key != account.api_key
    # The old key is dead at once, the new one works, and the profile shows the new tail.
    assert_error(client.get("/users/me", headers=auth(account)), 401, "authentication_required")
    assert_error(
        client.post("/messages", json={"content": "x"}, headers=auth(account)),
        401,
        "authentication_required",
    )
    profile = me(client, new_key)
    assert profile["id"] == account.id
    assert profile["api_key"] == masked(new_key)
    assert new_key not in client.get("/users/me", headers=auth(new_key)).text
    # Rotating again retires the second key too.
    again = client.post("/users/me/regenerate-api-key", headers=auth(new_key)).json()["api_key"]
    assert_error(client.get("/users/me", headers=auth(new_key)), 401, "authentication_required")
    assert me(client, again)["id"] == account.id


def test_viewer_can_regenerate_key(client: httpx.Client, live_server: LiveServer) -> None:
    viewer = live_server.register(role="viewer")
    resp = client.post("/users/me/regenerate-api-key", headers=auth(viewer))
    assert resp.status_code == 200, resp.text
    new_key = resp.json()["api_key"]
    assert me(client, new_key)["role"] == "viewer"
    assert_error(client.get("/users/me", headers=auth(viewer)), 401, "authentication_required")


# --- sending --------------------------------------------------------------------------------


def test_room_message_shape(client: httpx.Client, live_server: LiveServer) -> None:
    sender = live_server.register(logo="claude-color.png", emoji="🦀")
    msg = send(client, sender, "hello room")
    assert list(msg) == MESSAGE_KEYS
    assert UUID_RE.match(msg["id"])
    assert msg["from_user_id"] == sender.id
    assert msg["from_username"] == sender.username
    assert msg["from_user_logo"] == "claude-color.png"
    assert msg["from_user_emoji"] == "🦀"
    assert msg["from_user_bot"] is False
    assert msg["to_user_id"] is None
    assert msg["to_username"] is None
    assert msg["content"] == "hello room"
    assert msg["message_type"] == "room"
    assert msg["description"] == ROOM_DESCRIPTION
    assert TIMESTAMP_RE.match(msg["timestamp"])
    sent_at = datetime.fromisoformat(msg["timestamp"])
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
    assert isinstance(msg["seq"], int)
    # The stored message reads back identically.
    resp = client.get(f"/messages/{msg['id']}", headers=auth(sender))
    assert resp.status_code == 200
    assert resp.json() == msg


def test_direct_message_shape(client: httpx.Client, live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    msg = send(client, alice, "psst", to=bob.username)
    assert list(msg) == MESSAGE_KEYS
    assert msg["message_type"] == "direct"
    assert msg["from_user_id"] == alice.id
    assert msg["to_user_id"] == bob.id
    assert msg["to_username"] == bob.username
    assert (
        msg["description"] == f"This is a direct message from {alice.username} to {bob.username}."
    )


def test_content_is_stored_verbatim(client: httpx.Client, live_server: LiveServer) -> None:
    sender = live_server.register()
    content = '  🏈 "quotes" \\ <script>\n\ttabs\u0001ctl é 日本  '
    msg = send(client, sender, content)
    assert msg["content"] == content
    resp = client.get(f"/messages/{msg['id']}", headers=auth(sender))
    assert resp.json()["content"] == content


def test_nul_characters_are_refused_on_every_database(
    client: httpx.Client, live_server: LiveServer
) -> None:
    """PostgreSQL cannot store NUL; rather than differ by backend, it is always a 422."""
    sender = live_server.register()
    for body in ({"content": "a\u0000b"}, {"content": "x", "to_username": "a\u0000"}):
        resp = client.post("/messages", json=body, headers=auth(sender))
        assert resp.status_code == 422 and resp.json()["code"] == "validation_error"
    resp = client.post("/register", json={"username": "nul\u0000name"})
    assert resp.status_code == 422


def test_content_limit_counts_characters(client: httpx.Client, live_server: LiveServer) -> None:
    sender = live_server.register()
    msg = send(client, sender, "🏈" * 10_000)
    assert len(msg["content"]) == 10_000
    msg = send(client, sender, "a" * 10_000)
    assert len(msg["content"]) == 10_000


def test_dm_to_self_is_allowed_and_never_unread(
    client: httpx.Client, live_server: LiveServer
) -> None:
    alice = live_server.register()
    before = unread_count(client, alice)
    msg = send(client, alice, "note to self", to=alice.username)
    assert msg["to_user_id"] == alice.id
    assert unread_count(client, alice) == before
    assert msg["id"] in [m["id"] for m in history(client, alice, "/messages/direct")["messages"]]


def test_seq_increases_with_every_stored_message(
    client: httpx.Client, live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    seqs = [
        send(client, alice, "one")["seq"],
        send(client, bob, "two", to=alice.username)["seq"],
        send(client, bob, "three")["seq"],
        send(client, alice, "four", to=bob.username)["seq"],
    ]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


# --- history and pagination -----------------------------------------------------------------


def test_room_history_is_newest_first_with_exact_pagination(
    client: httpx.Client, live_server: LiveServer
) -> None:
    sender = live_server.register()
    anchor = send(client, sender, "anchor")
    sent = [send(client, sender, f"page {i}") for i in range(7)]
    expected = [m["id"] for m in reversed(sent)]

    seen: list[str] = []
    for offset, size, more in [(0, 3, True), (3, 3, True), (6, 1, False)]:
        page = history(client, sender, since=anchor["timestamp"], limit=3, offset=offset)
        assert page["pagination"] == {"total": 7, "offset": offset, "limit": 3, "has_more": more}
        assert len(page["messages"]) == size
        seen += [m["id"] for m in page["messages"]]
    assert seen == expected

    page = history(client, sender, since=anchor["timestamp"], limit=3, offset=7)
    assert page["messages"] == []
    assert page["pagination"] == {"total": 7, "offset": 7, "limit": 3, "has_more": False}
    page = history(client, sender, since=anchor["timestamp"], offset=100)
    assert page["messages"] == []
    assert page["pagination"]["has_more"] is False

    # Without since: newest first overall, seq strictly descending, our burst on top.
    page = history(client, sender, limit=8)
    assert [m["id"] for m in page["messages"]] == [*expected, anchor["id"]]
    seqs = [m["seq"] for m in history(client, sender, limit=1000)["messages"]]
    assert seqs == sorted(seqs, reverse=True)
    assert page["pagination"]["limit"] == 8
    assert page["pagination"]["total"] >= 8
    assert page["pagination"]["has_more"] is (page["pagination"]["total"] > 8)


def test_history_defaults_and_limit_bounds(client: httpx.Client, live_server: LiveServer) -> None:
    sender = live_server.register()
    for i in range(3):
        send(client, sender, f"bounds {i}")
    page = history(client, sender)
    assert page["pagination"]["limit"] == 50
    assert page["pagination"]["offset"] == 0
    assert len(page["messages"]) == min(50, page["pagination"]["total"])
    assert len(history(client, sender, limit=1)["messages"]) == 1
    big = history(client, sender, limit=1000)
    assert big["pagination"]["limit"] == 1000
    assert len(big["messages"]) == min(1000, big["pagination"]["total"])


def test_room_history_excludes_dms(client: httpx.Client, live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    anchor = send(client, alice, "anchor")
    dm = send(client, alice, "secret", to=bob.username)
    room = send(client, alice, "public")
    page = history(client, bob, since=anchor["timestamp"])
    assert [m["id"] for m in page["messages"]] == [room["id"]]
    assert page["pagination"]["total"] == 1
    assert dm["id"] not in [m["id"] for m in history(client, bob, limit=1000)["messages"]]


def _with_offset(ts: str, hours: float) -> str:
    return datetime.fromisoformat(ts).astimezone(timezone(timedelta(hours=hours))).isoformat()


@pytest.mark.parametrize(
    "render",
    [
        lambda ts: ts,
        lambda ts: ts.replace("+00:00", "Z"),
        lambda ts: ts.replace("+00:00", ""),
        lambda ts: _with_offset(ts, 5.5),
        lambda ts: _with_offset(ts, -8),
        lambda ts: _with_offset(ts, 14),
    ],
    ids=["utc", "z-suffix", "naive-is-utc", "plus-0530", "minus-0800", "plus-1400"],
)
@pytest.mark.parametrize("path", ["/messages", "/messages/direct"])
def test_since_is_compared_as_an_instant(
    client: httpx.Client,
    live_server: LiveServer,
    path: str,
    render: Callable[[str], str],
) -> None:
    alice, bob = live_server.register(), live_server.register()
    to = bob.username if path.endswith("direct") else None
    anchor = send(client, alice, "anchor", to=to)
    later = [send(client, alice, f"later {i}", to=to) for i in range(2)]
    since = render(anchor["timestamp"])
    page = history(client, alice, path, since=since)
    assert page["pagination"]["total"] == 2, since
    assert [m["id"] for m in page["messages"]] == [later[1]["id"], later[0]["id"]]


@pytest.mark.parametrize("path", ["/messages", "/messages/direct"])
def test_since_in_the_future_or_past(
    client: httpx.Client, live_server: LiveServer, path: str
) -> None:
    alice, bob = live_server.register(), live_server.register()
    msg = send(client, alice, "x", to=bob.username if path.endswith("direct") else None)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    page = history(client, alice, path, since=future)
    assert page == {
        "messages": [],
        "pagination": {"total": 0, "offset": 0, "limit": 50, "has_more": False},
    }
    # An instant just before the message includes it, whatever the offset it is written in.
    just_before = datetime.fromisoformat(msg["timestamp"]) - timedelta(microseconds=1)
    since = just_before.astimezone(timezone(timedelta(hours=-3))).isoformat()
    ids = [m["id"] for m in history(client, alice, path, since=since, limit=1000)["messages"]]
    assert msg["id"] in ids


# --- direct messages are private ------------------------------------------------------------


def test_direct_history_contains_only_the_callers_dms(
    client: httpx.Client, live_server: LiveServer
) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    viewer = live_server.register(role="viewer")
    to_bob = send(client, alice, "a->b", to=bob.username)
    to_alice = send(client, bob, "b->a", to=alice.username)
    to_carol = send(client, carol, "c->a", to=alice.username)
    send(client, alice, "room noise")

    page = history(client, alice, "/messages/direct")
    assert [m["id"] for m in page["messages"]] == [to_carol["id"], to_alice["id"], to_bob["id"]]
    assert page["pagination"] == {"total": 3, "offset": 0, "limit": 50, "has_more": False}

    page = history(client, bob, "/messages/direct")
    assert [m["id"] for m in page["messages"]] == [to_alice["id"], to_bob["id"]]
    assert page["pagination"]["total"] == 2

    page = history(client, carol, "/messages/direct")
    assert [m["id"] for m in page["messages"]] == [to_carol["id"]]

    # Viewers see none of other people's DMs (upstream showed them every DM).
    page = history(client, viewer, "/messages/direct", limit=1000)
    assert page["messages"] == []
    assert page["pagination"]["total"] == 0


def test_direct_history_pagination(client: httpx.Client, live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    sent = [send(client, alice, f"dm {i}", to=bob.username) for i in range(5)]
    expected = [m["id"] for m in reversed(sent)]
    first = history(client, bob, "/messages/direct", limit=2)
    second = history(client, bob, "/messages/direct", limit=2, offset=2)
    third = history(client, bob, "/messages/direct", limit=2, offset=4)
    assert first["pagination"] == {"total": 5, "offset": 0, "limit": 2, "has_more": True}
    assert second["pagination"] == {"total": 5, "offset": 2, "limit": 2, "has_more": True}
    assert third["pagination"] == {"total": 5, "offset": 4, "limit": 2, "has_more": False}
    got = [m["id"] for p in (first, second, third) for m in p["messages"]]
    assert got == expected


def test_get_message_by_id_respects_privacy(client: httpx.Client, live_server: LiveServer) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    viewer = live_server.register(role="viewer")
    room = send(client, alice, "room")
    dm = send(client, alice, "dm", to=bob.username)

    for reader in (alice, bob, carol, viewer):
        resp = client.get(f"/messages/{room['id']}", headers=auth(reader))
        assert resp.status_code == 200, resp.text
        assert resp.json() == room
    for reader in (alice, bob):
        resp = client.get(f"/messages/{dm['id']}", headers=auth(reader))
        assert resp.status_code == 200, resp.text
        assert resp.json() == dm
    for reader in (carol, viewer):
        resp = client.get(f"/messages/{dm['id']}", headers=auth(reader))
        detail = assert_error(resp, 404, "message_not_found")
        assert dm["id"] in detail

    # Ids match exactly: an unknown id or another spelling of a real one is not found.
    assert_error(
        client.get(f"/messages/{uuid.uuid4()}", headers=auth(alice)), 404, "message_not_found"
    )
    assert_error(
        client.get(f"/messages/{room['id'].upper()}", headers=auth(alice)),
        404,
        "message_not_found",
    )


def test_marking_someone_elses_dm_is_not_found(
    client: httpx.Client, live_server: LiveServer
) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    viewer = live_server.register(role="viewer")
    dm = send(client, alice, "for bob only", to=bob.username)
    for outsider in (carol, viewer):
        resp = client.post(f"/messages/{dm['id']}/read", headers=auth(outsider))
        assert_error(resp, 404, "message_not_found")
    # Bob still has it unread; marking it himself works.
    assert unread_count(client, bob)["unread_direct_messages"] == 1
    resp = client.post(f"/messages/{dm['id']}/read", headers=auth(bob))
    assert resp.status_code == 204
    assert resp.content == b""
    assert unread_count(client, bob)["unread_direct_messages"] == 0
    # The sender may mark their own DM (a no-op for counts).
    assert client.post(f"/messages/{dm['id']}/read", headers=auth(alice)).status_code == 204


def test_mark_unknown_message_is_not_found(client: httpx.Client, live_server: LiveServer) -> None:
    alice = live_server.register()
    missing = str(uuid.uuid4())
    detail = assert_error(
        client.post(f"/messages/{missing}/read", headers=auth(alice)), 404, "message_not_found"
    )
    assert missing in detail


# --- unread ---------------------------------------------------------------------------------


def test_new_user_starts_with_every_room_message_unread(
    client: httpx.Client, live_server: LiveServer
) -> None:
    sender = live_server.register()
    send(client, sender, "before the newcomer")
    newcomer = live_server.register()
    total_room = history(client, newcomer, limit=1)["pagination"]["total"]
    counts = unread_count(client, newcomer)
    assert counts == {
        "unread_room_messages": total_room,
        "unread_direct_messages": 0,
        "total_unread": total_room,
    }
    # And the sender's own message never counts for the sender.
    sender_unread = history(client, sender, "/messages/unread", limit=1000)
    assert all(m["from_user_id"] != sender.id for m in sender_unread)


def test_unread_counts_and_lists_are_exact_beyond_upstream_windows(
    client: httpx.Client, live_server: LiveServer
) -> None:
    sender, reader = live_server.register(), live_server.register()
    mark_all_read(client, reader)
    mark_all_read(client, sender)
    assert unread_count(client, reader) == {
        "unread_room_messages": 0,
        "unread_direct_messages": 0,
        "total_unread": 0,
    }

    room = [send(client, sender, f"bulk {i}") for i in range(120)]
    dms = [send(client, sender, f"bulk dm {i}", to=reader.username) for i in range(3)]
    room_ids = [m["id"] for m in room]

    assert unread_count(client, reader) == {
        "unread_room_messages": 120,
        "unread_direct_messages": 3,
        "total_unread": 123,
    }
    # Own messages are never unread.
    assert unread_count(client, sender) == {
        "unread_room_messages": 0,
        "unread_direct_messages": 0,
        "total_unread": 0,
    }

    # Unread list: oldest first, everything reachable with limit/offset.
    resp = client.get("/messages/unread", params={"limit": 1000}, headers=auth(reader))
    assert resp.status_code == 200
    assert [m["id"] for m in resp.json()] == room_ids
    paged: list[str] = []
    for offset in (0, 50, 100, 150):
        page = client.get(
            "/messages/unread", params={"limit": 50, "offset": offset}, headers=auth(reader)
        ).json()
        assert len(page) == {0: 50, 50: 50, 100: 20, 150: 0}[offset]
        paged += [m["id"] for m in page]
    assert paged == room_ids
    default = client.get("/messages/unread", headers=auth(reader)).json()
    assert [m["id"] for m in default] == room_ids[:50]

    resp = client.get("/messages/direct/unread", headers=auth(reader))
    assert resp.status_code == 200
    assert resp.json() == dms
    assert client.get("/messages/direct/unread", headers=auth(sender)).json() == []

    # History keeps all of them (no 100-message retention).
    page = history(client, reader, since=room[0]["timestamp"], limit=1000)
    assert page["pagination"]["total"] == 119

    # Mark one room message read, twice: idempotent.
    for _ in range(2):
        resp = client.post(f"/messages/{room_ids[10]}/read", headers=auth(reader))
        assert resp.status_code == 204
    assert unread_count(client, reader)["unread_room_messages"] == 119
    unread_ids = [
        m["id"]
        for m in client.get("/messages/unread", params={"limit": 1000}, headers=auth(reader)).json()
    ]
    assert unread_ids == room_ids[:10] + room_ids[11:]

    assert client.post(f"/messages/{dms[1]['id']}/read", headers=auth(reader)).status_code == 204
    assert unread_count(client, reader) == {
        "unread_room_messages": 119,
        "unread_direct_messages": 2,
        "total_unread": 121,
    }
    remaining_dms = client.get("/messages/direct/unread", headers=auth(reader)).json()
    assert [m["id"] for m in remaining_dms] == [dms[0]["id"], dms[2]["id"]]

    assert mark_all_read(client, reader) == 121
    assert unread_count(client, reader) == {
        "unread_room_messages": 0,
        "unread_direct_messages": 0,
        "total_unread": 0,
    }
    assert client.get("/messages/unread", headers=auth(reader)).json() == []
    assert client.get("/messages/direct/unread", headers=auth(reader)).json() == []
    assert mark_all_read(client, reader) == 0


def test_mark_all_read_counts_room_and_dms(client: httpx.Client, live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    mark_all_read(client, bob)
    send(client, alice, "room 1")
    send(client, alice, "room 2")
    send(client, alice, "dm", to=bob.username)
    send(client, bob, "bob's own")
    assert unread_count(client, bob)["total_unread"] == 3
    assert mark_all_read(client, bob) == 3
    # New messages after marking are unread again.
    send(client, alice, "room 3")
    assert unread_count(client, bob) == {
        "unread_room_messages": 1,
        "unread_direct_messages": 0,
        "total_unread": 1,
    }


def test_viewer_has_room_unread_but_no_dm_unread(
    client: httpx.Client, live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    viewer = live_server.register(role="viewer")
    mark_all_read(client, viewer)
    room = send(client, alice, "for everyone")
    send(client, alice, "for bob", to=bob.username)
    assert unread_count(client, viewer) == {
        "unread_room_messages": 1,
        "unread_direct_messages": 0,
        "total_unread": 1,
    }
    assert [m["id"] for m in client.get("/messages/unread", headers=auth(viewer)).json()] == [
        room["id"]
    ]
    assert client.get("/messages/direct/unread", headers=auth(viewer)).json() == []
    assert mark_all_read(client, viewer) == 1


# --- users ----------------------------------------------------------------------------------


def test_users_lists_chat_users_oldest_first(client: httpx.Client, live_server: LiveServer) -> None:
    first = live_server.register(logo="kimi-color.png")
    viewer = live_server.register(role="viewer")
    second = live_server.register(emoji="⚽")
    resp = client.get("/users", headers=auth(viewer))
    assert resp.status_code == 200
    users = resp.json()
    ids = [u["id"] for u in users]
    assert viewer.id not in ids
    assert all(u["viewer"] is False and u["role"] != "viewer" for u in users)
    assert ids.index(first.id) < ids.index(second.id)
    assert ids[-1] == second.id
    assert len(ids) == len(set(ids))
    entry = users[ids.index(first.id)]
    assert set(entry) == PUBLIC_PROFILE_KEYS
    assert entry == {
        "id": first.id,
        "username": first.username,
        "role": "member",
        "logo": "kimi-color.png",
        "emoji": None,
        "bot": False,
        "viewer": False,
    }
    assert users[-1]["emoji"] == "⚽"


def test_get_user_by_id(client: httpx.Client, live_server: LiveServer) -> None:
    alice = live_server.register()
    viewer = live_server.register(role="viewer")
    resp = client.get(f"/users/{viewer.id}", headers=auth(alice))
    assert resp.status_code == 200
    assert resp.json() == {
        "id": viewer.id,
        "username": viewer.username,
        "role": "viewer",
        "logo": None,
        "emoji": None,
        "bot": False,
        "viewer": True,
    }
    resp = client.get(f"/users/{alice.id.upper()}", headers=auth(viewer))
    assert resp.status_code == 200
    assert resp.json()["id"] == alice.id

    detail = assert_error(client.get("/users/not-a-uuid", headers=auth(alice)), 400, "invalid_id")
    assert "not-a-uuid" in detail
    missing = str(uuid.uuid4())
    detail = assert_error(
        client.get(f"/users/{missing}", headers=auth(alice)), 404, "user_not_found"
    )
    assert missing in detail


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        await asyncio.sleep(0.05)


async def test_online_users_follow_websocket_connections(live_server: LiveServer) -> None:
    member = live_server.register()
    viewer = live_server.register(role="viewer")
    offline = live_server.register()

    async with httpx.AsyncClient(base_url=live_server.http_url, timeout=10.0) as ac:

        async def online() -> list[dict]:
            resp = await ac.get("/users/online", headers=auth(offline))
            assert resp.status_code == 200, resp.text
            return resp.json()

        async def ids() -> list[str]:
            return [u["id"] for u in await online()]

        assert member.id not in await ids()
        async with websockets.connect(f"{live_server.ws_url}?api_key={member.api_key}"):

            async def member_online() -> bool:
                return member.id in await ids()

            await _eventually(member_online)
            async with websockets.connect(f"{live_server.ws_url}?api_key={viewer.api_key}"):

                async def viewer_online() -> bool:
                    return viewer.id in await ids()

                await _eventually(viewer_online)
                users = await online()
                order = [u["id"] for u in users]
                assert order.index(member.id) < order.index(viewer.id)
                assert len(order) == len(set(order))
                assert offline.id not in order
                entry = users[order.index(viewer.id)]
                assert set(entry) == PUBLIC_PROFILE_KEYS
                assert entry["viewer"] is True
                assert entry["role"] == "viewer"

            async def viewer_gone() -> bool:
                return viewer.id not in await ids()

            await _eventually(viewer_gone)
            assert member.id in await ids()

        async def member_gone() -> bool:
            return member.id not in await ids()

        await _eventually(member_gone)


async def test_second_connection_does_not_duplicate_presence(live_server: LiveServer) -> None:
    member = live_server.register()
    url = f"{live_server.ws_url}?api_key={member.api_key}"
    async with httpx.AsyncClient(base_url=live_server.http_url, timeout=10.0) as ac:

        async def count() -> int:
            resp = await ac.get("/users/online", headers=auth(member))
            return [u["id"] for u in resp.json()].count(member.id)

        async def is_online() -> bool:
            return await count() == 1

        async def is_offline() -> bool:
            return await count() == 0

        async with websockets.connect(url):
            await _eventually(is_online)
            async with websockets.connect(url):
                await asyncio.sleep(0.2)
                assert await count() == 1
            # One tab closed, the other is still open: still online.
            await asyncio.sleep(0.2)
            assert await count() == 1
        await _eventually(is_offline)


async def test_key_rotation_takes_the_user_offline(live_server: LiveServer) -> None:
    member = live_server.register()
    async with httpx.AsyncClient(base_url=live_server.http_url, timeout=10.0) as ac:

        async def is_online() -> bool:
            resp = await ac.get("/users/online", headers=auth(member))
            return member.id in [u["id"] for u in resp.json()]

        async with websockets.connect(f"{live_server.ws_url}?api_key={member.api_key}") as ws:
            await _eventually(is_online)
            resp = await ac.post("/users/me/regenerate-api-key", headers=auth(member))
            assert resp.status_code == 200
            member = Account(member.id, member.username, resp.json()["api_key"])

            async def is_offline() -> bool:
                return not await is_online()

            await _eventually(is_offline)
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()


# --- profile updates ------------------------------------------------------------------------


def test_logo_update_and_clear(client: httpx.Client, live_server: LiveServer) -> None:
    alice = live_server.register()
    earlier = send(client, alice, "before the logo")

    resp = client.patch("/users/me/logo", json={"logo": "gemini-color.png"}, headers=auth(alice))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"message": "Logo updated successfully", "logo": "gemini-color.png"}
    assert me(client, alice)["logo"] == "gemini-color.png"
    # Messages render the sender's current profile.
    msg = client.get(f"/messages/{earlier['id']}", headers=auth(alice)).json()
    assert msg["from_user_logo"] == "gemini-color.png"
    assert client.get(f"/users/{alice.id}", headers=auth(alice)).json()["logo"] == (
        "gemini-color.png"
    )

    resp = client.patch("/users/me/logo", json={"logo": None}, headers=auth(alice))
    assert resp.json() == {"message": "Logo updated successfully", "logo": ""}
    assert me(client, alice)["logo"] is None

    client.patch("/users/me/logo", json={"logo": "openai.png"}, headers=auth(alice))
    resp = client.patch("/users/me/logo", json={}, headers=auth(alice))
    assert resp.status_code == 200
    assert resp.json()["logo"] == ""
    assert me(client, alice)["logo"] is None


@pytest.mark.parametrize("logo", LOGOS)
def test_every_listed_logo_is_accepted(
    client: httpx.Client, live_server: LiveServer, logo: str
) -> None:
    alice = live_server.register()
    resp = client.patch("/users/me/logo", json={"logo": logo}, headers=auth(alice))
    assert resp.status_code == 200, resp.text
    assert resp.json()["logo"] == logo


def test_webhook_update_normalises_and_clears(
    client: httpx.Client, live_server: LiveServer
) -> None:
    alice = live_server.register()
    try:
        resp = client.patch(
            "/users/me/webhook", json={"webhook_url": "http://example.com"}, headers=auth(alice)
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # Extension: the signing secret, shown once (docs/protocol-extensions.md).
        assert body.pop("webhook_secret").startswith("whsec_")
        assert body == {
            "message": "Webhook URL updated successfully",
            "webhook_url": "http://example.com/",
        }
        assert me(client, alice)["webhook_url"] == "http://example.com/"
        resp = client.patch(
            "/users/me/webhook",
            json={"webhook_url": "https://example.com/hook?x=1"},
            headers=auth(alice),
        )
        assert resp.json()["webhook_url"] == "https://example.com/hook?x=1"
    finally:
        resp = client.patch("/users/me/webhook", json={"webhook_url": None}, headers=auth(alice))
    assert resp.status_code == 200
    assert resp.json() == {"message": "Webhook URL updated successfully", "webhook_url": ""}
    assert me(client, alice)["webhook_url"] is None
    resp = client.patch("/users/me/webhook", json={}, headers=auth(alice))
    assert resp.json()["webhook_url"] == ""


def test_rename_updates_messages_and_profile(client: httpx.Client, live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    room = send(client, alice, "room before rename")
    dm_out = send(client, alice, "dm out", to=bob.username)
    dm_in = send(client, bob, "dm in", to=alice.username)
    old_name = alice.username
    new_name = live_server.unique("renamed")

    resp = client.patch("/users/me/username", json={"username": new_name}, headers=auth(alice))
    assert resp.status_code == 200, resp.text
    profile = resp.json()
    assert set(profile) == PRIVATE_PROFILE_KEYS
    assert profile["username"] == new_name
    assert profile["id"] == alice.id
    assert profile["api_key"] == masked(alice.api_key)
    assert alice.api_key not in resp.text
    assert me(client, alice)["username"] == new_name

    got = client.get(f"/messages/{room['id']}", headers=auth(bob)).json()
    assert got["from_username"] == new_name
    got = client.get(f"/messages/{dm_out['id']}", headers=auth(bob)).json()
    assert got["from_username"] == new_name
    assert got["description"] == f"This is a direct message from {new_name} to {bob.username}."
    got = client.get(f"/messages/{dm_in['id']}", headers=auth(bob)).json()
    assert got["to_username"] == new_name
    assert got["to_user_id"] == alice.id
    page = history(client, bob, since=_before(room["timestamp"]))
    assert [m["from_username"] for m in page["messages"] if m["id"] == room["id"]] == [new_name]

    # DMs now go to the new name; the old one is unknown until someone takes it.
    dm = send(client, bob, "to the new name", to=new_name)
    assert dm["to_user_id"] == alice.id
    resp = client.post(
        "/messages", json={"content": "x", "to_username": old_name}, headers=auth(bob)
    )
    assert_error(resp, 404, "user_not_found")
    newcomer = client.post("/register", json={"username": old_name})
    assert newcomer.status_code == 201, newcomer.text
    assert client.get(f"/messages/{room['id']}", headers=auth(bob)).json()["from_username"] == (
        new_name
    )


def _before(ts: str) -> str:
    return (datetime.fromisoformat(ts) - timedelta(microseconds=1)).isoformat()


def test_rename_conflicts(client: httpx.Client, live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    resp = client.patch(
        "/users/me/username", json={"username": alice.username}, headers=auth(alice)
    )
    assert_error(resp, 409, "username_taken")
    resp = client.patch("/users/me/username", json={"username": bob.username}, headers=auth(alice))
    detail = assert_error(resp, 409, "username_taken")
    assert bob.username in detail
    assert me(client, alice)["username"] == alice.username
    # Case-sensitive: a different case is a different name.
    resp = client.patch(
        "/users/me/username", json={"username": bob.username.upper()}, headers=auth(alice)
    )
    assert resp.status_code == 200, resp.text


def test_viewer_cannot_change_profile_or_send(
    client: httpx.Client, live_server: LiveServer
) -> None:
    viewer = live_server.register(role="viewer")
    alice = live_server.register()
    attempts = [
        ("/users/me/logo", {"logo": "openai.png"}),
        ("/users/me/logo", {"logo": None}),
        ("/users/me/webhook", {"webhook_url": "http://example.com"}),
        ("/users/me/username", {"username": live_server.unique("viewer-rename")}),
    ]
    for path, body in attempts:
        resp = client.patch(path, json=body, headers=auth(viewer))
        detail = assert_error(resp, 403, "permission_denied")
        assert "viewer" in detail
    profile = me(client, viewer)
    assert (profile["username"], profile["logo"], profile["webhook_url"]) == (
        viewer.username,
        None,
        None,
    )
    resp = client.post("/messages", json={"content": "hi"}, headers=auth(viewer))
    assert_error(resp, 403, "permission_denied")
    resp = client.post(
        "/messages", json={"content": "hi", "to_username": alice.username}, headers=auth(viewer)
    )
    assert_error(resp, 403, "permission_denied")
    assert history(client, alice, "/messages/direct")["pagination"]["total"] == 0
