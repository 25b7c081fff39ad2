"""End-to-end tests of REST error handling: every error is a 4xx with a stable code, never a 5xx.

Error bodies are ``{"detail": ..., "code": "<stable code>"}`` (PROTOCOL.md section 2.4 plus our
``code`` extension). Validation failures keep FastAPI's list of items as ``detail``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Account, LiveServer


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.http_url, timeout=30.0) as c:
        yield c


@pytest.fixture
def member(live_server: LiveServer) -> Account:
    return live_server.register()


def auth(account: Account) -> dict[str, str]:
    return {"X-API-Key": account.api_key}


def assert_error(resp: httpx.Response, status: int, code: str) -> Any:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"detail", "code"}, body
    assert body["code"] == code, body
    return body["detail"]


def assert_validation(resp: httpx.Response, loc: list[Any] | None = None) -> list[dict]:
    """422 ``validation_error`` with FastAPI's item list; ``loc`` must be one of the items."""
    detail = assert_error(resp, 422, "validation_error")
    assert isinstance(detail, list)
    assert detail
    for item in detail:
        assert {"type", "loc", "msg"} <= set(item), item
    if loc is not None:
        assert loc in [item["loc"] for item in detail], detail
    return detail


# --- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/users/me/extra"),
        ("POST", "/messages/a/b/c"),
        ("GET", "/messages/unread/count/extra"),
        ("GET", "/admin/users/../../etc/passwd"),
    ],
)
def test_unknown_route(client: httpx.Client, member: Account, method: str, path: str) -> None:
    resp = client.request(method, path, headers=auth(member))
    detail = assert_error(resp, 404, "route_not_found")
    assert detail == "Not Found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/register"),
        ("DELETE", "/messages"),
        ("PUT", "/users/me"),
        ("PUT", "/messages/mark-all-read"),
        ("PATCH", "/messages/unread/count"),
        ("POST", "/health"),
        ("DELETE", "/logos"),
    ],
)
def test_wrong_method(client: httpx.Client, member: Account, method: str, path: str) -> None:
    resp = client.request(method, path, headers=auth(member))
    detail = assert_error(resp, 405, "method_not_allowed")
    assert detail == "Method Not Allowed"


@pytest.mark.parametrize("path", ["/auth/magic-link/send", "/auth/magic-link/authenticate"])
def test_magic_link_is_not_configured(client: httpx.Client, path: str) -> None:
    resp = client.post(path, json={"email": "someone@example.com", "token": "x"})
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["detail"] == "Stytch authentication is not configured"
    assert isinstance(body["code"], str)
    assert body["code"]


# --- malformed bodies -----------------------------------------------------------------------


BODY_ENDPOINTS = [
    ("POST", "/register"),
    ("POST", "/messages"),
    ("PATCH", "/users/me/logo"),
    ("PATCH", "/users/me/webhook"),
    ("PATCH", "/users/me/username"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
@pytest.mark.parametrize("raw", [b"{bad json", b'{"content": "x",}', b"{'a': 1}", b"[1, 2", b"nul"])
def test_malformed_json_is_invalid_json(
    client: httpx.Client, member: Account, method: str, path: str, raw: bytes
) -> None:
    resp = client.request(
        method, path, content=raw, headers={**auth(member), "Content-Type": "application/json"}
    )
    detail = assert_error(resp, 422, "invalid_json")
    assert any(item["type"] == "json_invalid" for item in detail)


def test_malformed_json_wins_over_missing_key(client: httpx.Client) -> None:
    resp = client.post("/messages", content=b"{oops", headers={"Content-Type": "application/json"})
    assert_error(resp, 422, "invalid_json")


def test_missing_key_wins_over_schema_errors(client: httpx.Client) -> None:
    for body in ({}, {"content": ""}, {"content": 5}, []):
        resp = client.post("/messages", json=body)
        assert_error(resp, 401, "authentication_required")
        assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'"a string"', b"42", b"null", b"true", b'{"content": {"nested": [1]}}'],
    ids=["empty", "array", "string", "number", "null", "bool", "wrong-nesting"],
)
def test_wrong_json_shapes_are_validation_errors(
    client: httpx.Client, member: Account, method: str, path: str, body: bytes
) -> None:
    resp = client.request(
        method, path, content=body, headers={**auth(member), "Content-Type": "application/json"}
    )
    if path in ("/users/me/logo", "/users/me/webhook") and body.startswith(b"{"):
        # Unknown keys are ignored and an absent field means null: the logo / webhook is cleared.
        assert resp.status_code == 200, resp.text
        return
    assert_validation(resp)


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "text/plain"}, b'{"content": "hi"}'),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"content=hi"),
        ({"Content-Type": "application/json"}, b'{"content": "\xff\xfe"}'),
        ({"Content-Type": "application/json; charset=utf-8"}, b"\xff\xfe\x00"),
    ],
    ids=["text-plain", "form", "bad-utf8-in-string", "bad-utf8"],
)
def test_odd_bodies_are_rejected_without_5xx(
    client: httpx.Client, member: Account, headers: dict, content: bytes
) -> None:
    resp = client.post("/messages", content=content, headers={**auth(member), **headers})
    assert 400 <= resp.status_code < 500, resp.text
    body = resp.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] in ("validation_error", "invalid_json")


# --- POST /messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "content"]),
        ({"content": ""}, ["body", "content"]),
        ({"content": "x" * 10_001}, ["body", "content"]),
        ({"content": "🏈" * 10_001}, ["body", "content"]),
        ({"content": None}, ["body", "content"]),
        ({"content": 5}, ["body", "content"]),
        ({"content": ["a"]}, ["body", "content"]),
        ({"content": {"text": "a"}}, ["body", "content"]),
        ({"content": "hi", "to_username": ""}, ["body", "to_username"]),
        ({"content": "hi", "to_username": "x" * 51}, ["body", "to_username"]),
        ({"content": "hi", "to_username": 7}, ["body", "to_username"]),
        ({"content": "hi", "to_username": ["a"]}, ["body", "to_username"]),
    ],
    ids=[
        "missing",
        "empty",
        "too-long",
        "too-long-emoji",
        "null",
        "int",
        "list",
        "object",
        "empty-recipient",
        "long-recipient",
        "int-recipient",
        "list-recipient",
    ],
)
def test_send_validation(client: httpx.Client, member: Account, body: dict, loc: list[str]) -> None:
    before = _count_room(client, member)
    assert_validation(client.post("/messages", json=body, headers=auth(member)), loc)
    assert _count_room(client, member) == before


def test_send_too_long_reports_the_limit(client: httpx.Client, member: Account) -> None:
    resp = client.post("/messages", json={"content": "x" * 10_001}, headers=auth(member))
    (item,) = assert_validation(resp, ["body", "content"])
    assert item["type"] == "string_too_long"
    assert item["ctx"] == {"max_length": 10_000}


def test_send_to_unknown_recipient(client: httpx.Client, member: Account) -> None:
    name = f"ghost-{uuid.uuid4().hex[:8]}"
    resp = client.post(
        "/messages", json={"content": "hi", "to_username": name}, headers=auth(member)
    )
    detail = assert_error(resp, 404, "user_not_found")
    assert name in detail


def test_send_to_viewer_recipient(
    client: httpx.Client, member: Account, live_server: LiveServer
) -> None:
    viewer = live_server.register(role="viewer")
    resp = client.post(
        "/messages", json={"content": "hi", "to_username": viewer.username}, headers=auth(member)
    )
    detail = assert_error(resp, 400, "recipient_is_viewer")
    assert viewer.username in detail
    assert client.get("/messages/direct", headers=auth(member)).json()["pagination"]["total"] == 0


def test_viewer_sending_is_forbidden(client: httpx.Client, live_server: LiveServer) -> None:
    viewer = live_server.register(role="viewer")
    resp = client.post("/messages", json={"content": "hi"}, headers=auth(viewer))
    detail = assert_error(resp, 403, "permission_denied")
    assert "room messages" in detail
    # Field validation comes before the permission check inside the handler (section 2.4).
    resp = client.post("/messages", json={"content": ""}, headers=auth(viewer))
    assert_validation(resp, ["body", "content"])


def test_recipient_lookup_is_case_sensitive(client: httpx.Client, live_server: LiveServer) -> None:
    sender = live_server.register()
    recipient = live_server.register(live_server.unique("CaseSens"))
    resp = client.post(
        "/messages",
        json={"content": "hi", "to_username": recipient.username.lower()},
        headers=auth(sender),
    )
    assert_error(resp, 404, "user_not_found")


def _count_room(client: httpx.Client, account: Account) -> int:
    resp = client.get("/messages", params={"limit": 1}, headers=auth(account))
    assert resp.status_code == 200
    return int(resp.json()["pagination"]["total"])


# --- query parameters -----------------------------------------------------------------------


LIST_ENDPOINTS = ["/messages", "/messages/direct", "/messages/unread", "/messages/direct/unread"]


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": 10**20}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"offset": "1e3"}, "offset"),
    ],
)
def test_limit_and_offset_are_bounded(
    client: httpx.Client, member: Account, path: str, params: dict, field: str
) -> None:
    resp = client.get(path, params=params, headers=auth(member))
    assert_validation(resp, ["query", field])


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
@pytest.mark.parametrize(
    "params", [{"limit": 1}, {"limit": 1000}, {"offset": 0}, {"offset": 10**6}]
)
def test_limit_and_offset_within_bounds(
    client: httpx.Client, member: Account, path: str, params: dict
) -> None:
    resp = client.get(path, params=params, headers=auth(member))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("path", ["/messages", "/messages/direct"])
@pytest.mark.parametrize(
    "since",
    ["yesterday", "2025-13-01T00:00:00", "2025-10-30T25:00:00+00:00", "", "12345x", "Z"],
)
def test_invalid_since(client: httpx.Client, member: Account, path: str, since: str) -> None:
    resp = client.get(path, params={"since": since}, headers=auth(member))
    detail = assert_error(resp, 400, "invalid_timestamp")
    assert detail == "Invalid timestamp format. Use ISO 8601 format."


# --- registration and profile fields --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "username"]),
        ({"username": ""}, ["body", "username"]),
        ({"username": "x" * 51}, ["body", "username"]),
        ({"username": None}, ["body", "username"]),
        ({"username": 12}, ["body", "username"]),
        ({"username": "ok", "emoji": "x" * 11}, ["body", "emoji"]),
        ({"username": "ok", "logo": "nope.png"}, ["body", "logo"]),
        ({"username": "ok", "webhook_url": "not a url"}, ["body", "webhook_url"]),
        ({"username": "ok", "webhook_url": "ftp://example.com/"}, ["body", "webhook_url"]),
        ({"username": "ok", "role": "superuser"}, ["body", "role"]),
        ({"username": "ok", "admin": "maybe"}, ["body", "admin"]),
        ({"username": "ok", "bot": True, "logo": "openai.png"}, ["body"]),
    ],
    ids=[
        "missing",
        "empty",
        "too-long",
        "null",
        "int",
        "long-emoji",
        "bad-logo",
        "bad-url",
        "ftp-url",
        "bad-role",
        "bad-flag",
        "bot-with-logo",
    ],
)
def test_register_validation(client: httpx.Client, body: dict, loc: list[str]) -> None:
    assert_validation(client.post("/register", json=body), loc)


def test_register_accepts_boundary_values(client: httpx.Client, live_server: LiveServer) -> None:
    name = live_server.unique("b").ljust(50, "_")
    resp = client.post("/register", json={"username": name, "emoji": "x" * 10})
    assert resp.status_code == 201, resp.text
    assert resp.json()["username"] == name
    assert resp.json()["emoji"] == "x" * 10


@pytest.mark.parametrize(
    "body",
    [{"logo": "nope.png"}, {"logo": 3}, {"logo": "OPENAI.PNG"}, {"logo": ["openai.png"]}],
)
def test_logo_validation(client: httpx.Client, member: Account, body: dict) -> None:
    resp = client.patch("/users/me/logo", json=body, headers=auth(member))
    assert_validation(resp, ["body", "logo"])


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://example.com/",
        "javascript:alert(1)",
        "http://",
        "example.com",
        "http://example.com/" + "a" * 2100,
        "",
    ],
    ids=["words", "ftp", "javascript", "no-host", "no-scheme", "too-long", "empty"],
)
def test_webhook_validation(client: httpx.Client, member: Account, url: str) -> None:
    resp = client.patch("/users/me/webhook", json={"webhook_url": url}, headers=auth(member))
    assert_validation(resp, ["body", "webhook_url"])
    assert client.get("/users/me", headers=auth(member)).json()["webhook_url"] is None


@pytest.mark.parametrize(
    "body",
    [{}, {"username": ""}, {"username": "x" * 51}, {"username": None}, {"username": 5}],
    ids=["missing", "empty", "too-long", "null", "int"],
)
def test_username_update_validation(client: httpx.Client, member: Account, body: dict) -> None:
    resp = client.patch("/users/me/username", json=body, headers=auth(member))
    assert_validation(resp, ["body", "username"])
    assert client.get("/users/me", headers=auth(member)).json()["username"] == member.username


def test_viewer_permission_check_precedes_field_validation(
    client: httpx.Client, live_server: LiveServer
) -> None:
    """Section 2.4, rule 3: the ``users:update:own`` gate answers 403 before field checks."""
    viewer = live_server.register(role="viewer")
    for path, body in [
        ("/users/me/logo", {"logo": "nope.png"}),
        ("/users/me/webhook", {"webhook_url": "not a url"}),
        ("/users/me/username", {"username": ""}),
    ]:
        resp = client.patch(path, json=body, headers=auth(viewer))
        assert_error(resp, 403, "permission_denied")


# --- ids in paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id",
    ["not-a-uuid", "123", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "%20", "me2", "null"],
)
def test_user_id_must_be_a_uuid(client: httpx.Client, member: Account, user_id: str) -> None:
    resp = client.get(f"/users/{user_id}", headers=auth(member))
    assert_error(resp, 400, "invalid_id")


@pytest.mark.parametrize(
    "message_id", ["not-a-uuid", "0", "%25", "'; DROP TABLE messages; --", "x" * 500]
)
def test_odd_message_ids_are_not_found(
    client: httpx.Client, member: Account, message_id: str
) -> None:
    resp = client.post(f"/messages/{message_id}/read", headers=auth(member))
    assert_error(resp, 404, "message_not_found")
    resp = client.get(f"/messages/{message_id}", headers=auth(member))
    assert_error(resp, 404, "message_not_found")
