"""Hostile input against a real server (issue 7, defects 2, 8 and 9).

Text that no database can store or no UTF-8 encoder can send (a lone UTF-16 surrogate, as
JSON ``"\\ud800"`` without its pair; NUL), JSON the parser cannot take (nesting beyond its
recursion limit, integers of thousands of digits), numbers beyond 64 bits and digits that
are not ASCII, in every field, query parameter and path parameter: each gets an error frame
or a 4xx with a stable code, never a 5xx, a dropped connection or a stored row, and the
connection answers the next request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Account, LiveServer
from tests.wsclient import WsClient

LONE = "x\ud800"  # json.dumps sends it as the escape "x\\ud800", as a hostile client would
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 5_000 + "1" + "}" * 5_000
MANY_DIGITS = "9" * 5_000  # beyond Python's 4300-digit limit for int()
BIG_INT = 2**64  # beyond any 64-bit column
NOT_ASCII_DIGITS = ["²", "١٢٣", "１２"]


def frame(**fields: Any) -> str:
    return json.dumps(fields)  # ensure_ascii: a lone surrogate goes out as its escape


async def connect(server: LiveServer, account: Account) -> WsClient:
    return await WsClient.connect(server.ws_url, account.api_key)


async def assert_error_then_usable(client: WsClient, text: str, code: str) -> dict[str, Any]:
    """Send ``text``; expect an ``error`` frame with ``code``, then a working connection."""
    await client.send(text)
    error = await client.recv_until(lambda f: f.get("type") == "error", timeout=15)
    assert error["code"] == code, error
    assert isinstance(error["error"], str) and error["error"]
    reply = await client.request({"type": "get_unread_count"}, timeout=15)
    assert reply["type"] == "unread_count"
    return error


# --- WebSocket frames -----------------------------------------------------------------------

LONE_SURROGATE_FRAMES = [
    frame(type=LONE),
    frame(type=LONE, request_id="r-type"),
    frame(type="get_users", request_id=LONE),
    frame(content="hi", request_id=LONE),
    frame(type="mark_read", message_id=LONE),
    frame(type="mark_read", message_id=LONE, request_id="r-id"),
    frame(content=LONE),
    frame(type="message", content="hi", to_username=LONE),
    frame(content="hi", client_message_id=LONE),
    frame(type="mark_direct_read", from_username=LONE),
    frame(type="get_user_profile", username=LONE),
    frame(type="typing", to_username=LONE),
    frame(type="get_messages", since=LONE),
    frame(type="get_direct_messages", since=LONE),
    frame(content="\ud83c"),  # the first half of an emoji's surrogate pair, alone
    frame(content="\udfc8 tail"),  # the second half alone
]


@pytest.mark.parametrize("text", LONE_SURROGATE_FRAMES)
async def test_lone_surrogates_in_any_frame_field_get_an_error_frame(
    live_server: LiveServer, text: str
) -> None:
    client = await connect(live_server, live_server.register())
    error = await assert_error_then_usable(client, text, _expected_code(text))
    data = json.loads(text)
    if data.get("request_id") == "r-type" or data.get("request_id") == "r-id":
        assert error["request_id"] == data["request_id"]  # a valid request id is echoed
    else:
        assert "request_id" not in error  # an invalid one is not
    await client.close()


def _expected_code(text: str) -> str:
    data = json.loads(text)
    return "unknown_type" if data.get("type") == LONE else "invalid_frame"


async def test_an_unknown_type_with_a_lone_surrogate_is_quoted_with_a_replacement(
    live_server: LiveServer,
) -> None:
    client = await connect(live_server, live_server.register())
    error = await assert_error_then_usable(client, frame(type=LONE), "unknown_type")
    assert error["error"] == "Unknown message type: x\ufffd"
    await client.close()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (DEEP_ARRAY, "invalid_json"),
        (DEEP_OBJECT, "invalid_json"),
        ('{"type": "get_users", "x": ' + DEEP_ARRAY + "}", "invalid_json"),
        ('{"type": "get_messages", "limit": ' + MANY_DIGITS + "}", "invalid_json"),
        ('{"type": "get_messages", "request_id": ' + MANY_DIGITS + "}", "invalid_json"),
        ('{"type": "get_messages", "limit": ' + "9" * 4_000 + "}", "invalid_frame"),
        ('{"type": "get_messages", "offset": ' + "9" * 4_000 + "}", "invalid_frame"),
        (frame(type="get_messages", offset=BIG_INT), "invalid_frame"),
        (frame(type="get_unread_messages", offset=BIG_INT), "invalid_frame"),
        (frame(type="get_unread_direct_messages", offset=BIG_INT), "invalid_frame"),
        (frame(type="get_direct_messages", offset=2**63), "invalid_frame"),
        (frame(type="get_messages", limit=BIG_INT), "invalid_frame"),
        (frame(type="get_users", request_id=BIG_INT), "invalid_frame"),
        ('{"type": "get_messages", "offset": 1e400}', "invalid_frame"),
        ('{"type": "get_messages", "limit": NaN}', "invalid_frame"),
        (frame(type="get_messages", since="9" * 10_000), "invalid_timestamp"),
        (frame(content="hi", client_message_id="c" * 129), "invalid_frame"),
        (frame(type="message", content="nul \x00"), "invalid_frame"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else str(value),
)
async def test_unparseable_and_out_of_range_frames_get_an_error_frame(
    live_server: LiveServer, text: str, code: str
) -> None:
    client = await connect(live_server, live_server.register())
    await assert_error_then_usable(client, text, code)
    await client.close()


async def test_the_largest_64_bit_offset_is_a_valid_empty_page(live_server: LiveServer) -> None:
    client = await connect(live_server, live_server.register())
    page = await client.request({"type": "get_messages", "offset": 2**63 - 1})
    assert page["type"] == "messages" and page["messages"] == []
    page = await client.request({"type": "get_unread_messages", "offset": 2**63 - 1})
    assert page["type"] == "unread_messages" and page["messages"] == []
    await client.close()


async def test_surrogate_pairs_are_text_like_any_other(live_server: LiveServer) -> None:
    """A JSON encoder that escapes everything sends an emoji as a surrogate pair: that is
    one character, stored and sent back as itself."""
    client = await connect(live_server, live_server.register())
    text = '{"type": "message", "content": "go \\ud83c\\udfc8", "request_id": "pair"}'
    await client.send(text)
    reply = await client.recv_until(lambda f: f.get("request_id") == "pair")
    assert reply["type"] == "message_sent" and reply["message"]["content"] == "go \U0001f3c8"
    await client.close()


async def test_rejected_frames_store_nothing(live_server: LiveServer) -> None:
    sender = live_server.register()
    client = await connect(live_server, sender)
    for content in (LONE, "a\x00b", "\udfff"):
        await assert_error_then_usable(client, frame(content=content), "invalid_frame")
    with httpx.Client(base_url=live_server.http_url) as http:
        history = http.get("/messages", params={"limit": 1000}, headers=_key(sender)).json()
    assert not [m for m in history["messages"] if m["from_username"] == sender.username]
    await client.close()


# --- one sender's bad message in a shared group commit ---------------------------------------


async def test_a_poisoned_send_among_concurrent_senders_fails_only_its_sender(
    live_server: LiveServer,
) -> None:
    """Many connections send at once, so their messages share group commits; one of them
    sends a lone surrogate. Everyone else's send is stored and acknowledged."""
    senders = [live_server.register() for _ in range(8)]
    poisoner = live_server.register()
    clients = [await connect(live_server, account) for account in senders]
    bad = await connect(live_server, poisoner)
    try:
        for round_ in range(5):
            sends = [
                c.request({"type": "message", "content": f"r{round_} s{i}"}, timeout=30)
                for i, c in enumerate(clients)
            ]
            poisoned = bad.request({"type": "message", "content": LONE}, timeout=30)
            *acks, rejected = await asyncio.gather(*sends, poisoned)
            assert rejected["type"] == "error" and rejected["code"] == "invalid_frame"
            for i, ack in enumerate(acks):
                assert ack["type"] == "message_sent", ack
                assert ack["message"]["content"] == f"r{round_} s{i}"
        with httpx.Client(base_url=live_server.http_url) as http:
            history = http.get("/messages", params={"limit": 1000}, headers=_key(poisoner))
        contents = {m["content"] for m in history.json()["messages"]}
        assert {f"r{r} s{i}" for r in range(5) for i in range(8)} <= contents
        assert not [
            m for m in history.json()["messages"] if m["from_username"] == poisoner.username
        ]
    finally:
        for c in [*clients, bad]:
            await c.close()


# --- the WebSocket handshake ----------------------------------------------------------------


@pytest.mark.parametrize(
    "since_seq",
    [
        *NOT_ASCII_DIGITS,
        MANY_DIGITS,
        str(2**63),
        str(BIG_INT),
        "-1",
        "1.5",
        "0x10",
        "%201",
        "1%00",
        "%00",
    ],
)
async def test_a_malformed_since_seq_is_refused_at_the_handshake(
    live_server: LiveServer, since_seq: str
) -> None:
    account = live_server.register()
    url = f"{live_server.ws_url}?api_key={account.api_key}&since_seq={since_seq}"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    response = refused.value.response
    assert response.status_code == 400
    body = json.loads(response.body or b"{}")
    assert body["code"] == "validation_error" and "since_seq" in body["detail"]


async def test_the_largest_64_bit_since_seq_is_accepted(live_server: LiveServer) -> None:
    account = live_server.register()
    url = f"{live_server.ws_url}?api_key={account.api_key}&since_seq={2**63 - 1}"
    async with websockets.connect(url) as conn:
        client = WsClient(conn)
        reply = await client.request({"type": "get_unread_count"})
        assert reply["type"] == "unread_count"


# --- REST bodies ----------------------------------------------------------------------------


def _key(account: Account) -> dict[str, str]:
    return {"X-API-Key": account.api_key}


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.http_url, timeout=30.0) as client:
        yield client


def _raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()  # ASCII, with the surrogate as an escape


def assert_4xx(resp: httpx.Response, code: str, status: int = 422) -> Any:
    assert resp.status_code == status, resp.text
    body = resp.json()  # the error body itself must be valid UTF-8 JSON
    assert set(body) == {"detail", "code"} and body["code"] == code, body
    return body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/messages", {"content": LONE}, "content"),
        ("POST", "/messages", {"content": "hi", "to_username": LONE}, "to_username"),
        ("POST", "/messages", {"content": "hi", "client_message_id": LONE}, "client_message_id"),
        ("POST", "/register", {"username": LONE}, "username"),
        ("POST", "/register", {"username": "ok", "webhook_url": f"http://{LONE}.test/"}, None),
        ("POST", "/register", {"username": "ok", "logo": LONE}, "logo"),
        ("POST", "/register", {"username": "ok", "bot": True, "emoji": LONE}, "emoji"),
        ("PATCH", "/users/me/username", {"username": LONE}, "username"),
        ("PATCH", "/users/me/logo", {"logo": LONE}, "logo"),
        ("PATCH", "/users/me/webhook", {"webhook_url": f"https://{LONE}/"}, "webhook_url"),
        ("PATCH", "/users/me/webhook", {"webhook_url": f"https://ok.test/{LONE}"}, "webhook_url"),
    ],
)
def test_lone_surrogates_in_rest_bodies_are_422(
    http: httpx.Client,
    live_server: LiveServer,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str | None,
) -> None:
    account = live_server.register()
    before = http.get("/users/me", headers=_key(account)).json()
    resp = http.request(
        method,
        path,
        content=_raw(body),
        headers={**_key(account), "Content-Type": "application/json"},
    )
    detail = assert_4xx(resp, "validation_error")
    if field is not None:
        assert ["body", field] in [item["loc"] for item in detail], detail
    for item in detail:
        assert "\ufffd" in json.dumps(item, ensure_ascii=False) or "input" not in item
    # Nothing changed.
    assert http.get("/users/me", headers=_key(account)).json() == before
    users = {u["username"] for u in http.get("/users", headers=_key(account)).json()}
    assert "x\ufffd" not in users


@pytest.mark.parametrize(
    "content",
    [
        DEEP_ARRAY.encode(),
        DEEP_OBJECT.encode(),
        b'{"content": ' + MANY_DIGITS.encode() + b"}",
        b'{"content": "hi", "x": ' + DEEP_ARRAY.encode() + b"}",
    ],
    ids=["deep-array", "deep-object", "many-digits", "deep-extra-field"],
)
@pytest.mark.parametrize("path", ["/messages", "/register"])
def test_bodies_the_json_parser_cannot_take_are_invalid_json(
    http: httpx.Client, member: Account, path: str, content: bytes
) -> None:
    resp = http.post(
        path, content=content, headers={**_key(member), "Content-Type": "application/json"}
    )
    detail = assert_4xx(resp, "invalid_json")
    assert detail[0]["type"] == "json_invalid"


@pytest.fixture
def member(live_server: LiveServer) -> Account:
    return live_server.register()


# --- REST query and path parameters ---------------------------------------------------------

LIST_PATHS = ["/messages", "/messages/direct", "/messages/unread", "/messages/direct/unread"]
BAD_INTEGERS = [str(BIG_INT), str(2**63), MANY_DIGITS, *NOT_ASCII_DIGITS, "1e3", "0x10", "-1"]


@pytest.mark.parametrize("value", BAD_INTEGERS)
@pytest.mark.parametrize("name", ["limit", "offset"])
@pytest.mark.parametrize("path", LIST_PATHS)
def test_out_of_range_or_odd_page_numbers_are_422(
    http: httpx.Client, member: Account, path: str, name: str, value: str
) -> None:
    detail = assert_4xx(
        http.get(path, params={name: value}, headers=_key(member)), "validation_error"
    )
    assert ["query", name] in [item["loc"] for item in detail]


@pytest.mark.parametrize("path", LIST_PATHS)
def test_the_largest_64_bit_offset_is_an_empty_page(
    http: httpx.Client, member: Account, path: str
) -> None:
    resp = http.get(path, params={"offset": str(2**63 - 1)}, headers=_key(member))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "since",
    [
        "\x00",
        "9" * 10_000,
        "²",
        "١٢٣-01-01",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
    ],
)
@pytest.mark.parametrize("path", ["/messages", "/messages/direct"])
def test_odd_since_values_never_5xx(
    http: httpx.Client, member: Account, path: str, since: str
) -> None:
    resp = http.get(path, params={"since": since}, headers=_key(member))
    if resp.status_code != 200:  # the extreme instants are valid ISO-8601
        assert_4xx(resp, "invalid_timestamp", status=400)


ODD_PATH_PARTS = [
    "%ED%A0%80",
    "%00",
    "%FF",
    "%C0%AF",
    "x" * 5_000,
    "9" * 5_000,
    "%2E%2E",
    "%EF%BF%BD",
]


@pytest.mark.parametrize("part", ODD_PATH_PARTS)
def test_odd_ids_in_paths_are_4xx_with_a_code(
    http: httpx.Client, member: Account, part: str
) -> None:
    for method, template in [
        ("GET", "/messages/{}"),
        ("POST", "/messages/{}/read"),
        ("GET", "/users/{}"),
    ]:
        resp = http.request(method, template.format(part), headers=_key(member))
        assert 400 <= resp.status_code < 500, (method, template, resp.text)
        assert "code" in resp.json(), resp.text


@pytest.mark.parametrize("key", ["%ED%A0%80", "%00", "é" * 10, "x" * 10_000])
def test_odd_api_keys_are_401(http: httpx.Client, key: str) -> None:
    resp = http.get(f"/messages?api_key={key}")
    assert_4xx(resp, "authentication_required", status=401)
    resp = http.get("/users/me", headers={"X-API-Key": key.encode("utf-8")})
    assert_4xx(resp, "authentication_required", status=401)
