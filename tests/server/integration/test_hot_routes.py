"""api/rest/hot_routes.py answers its three routes exactly as the FastAPI app does.

Every request is made twice against one running app (the same database and services): once
to the FastAPI app alone, once through ``HotRoutes``. Error answers must be identical byte for
byte, headers included; successes the same status, headers and fields (ids and timestamps
differ). Each case also says whether the lane must answer itself or hand the request over, so
a lane that handed everything over (and so was never fast) fails too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from token_bowl_chat.protocol.models import MAX_CONTENT_LENGTH
from token_bowl_chat_server.api.rest.hot_routes import MAX_HELD_BODY, HotRoutes
from token_bowl_chat_server.app import create_app
from token_bowl_chat_server.settings import Settings


class CountingApp:
    """The FastAPI app, counting the requests that reach it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@dataclass
class Served:
    app: FastAPI
    inner: CountingApp
    plain: httpx.AsyncClient  # the FastAPI app alone
    hot: httpx.AsyncClient  # through HotRoutes
    keys: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        send_rate=10_000,
        send_burst=10_000,
    )
    app = create_app(settings)
    inner = CountingApp(app)
    lane = HotRoutes(inner, app)
    async with app.router.lifespan_context(app):
        plain_transport = httpx.ASGITransport(app=app)
        hot_transport = httpx.ASGITransport(app=lane)
        async with (
            httpx.AsyncClient(transport=plain_transport, base_url="http://test") as plain,
            httpx.AsyncClient(transport=hot_transport, base_url="http://test") as hot,
        ):
            served = Served(app, inner, plain, hot)
            for name, role in (("alice", "member"), ("bob", "member"), ("vera", "viewer")):
                resp = await plain.post("/register", json={"username": name, "role": role})
                assert resp.status_code == 201, resp.text
                served.keys[name] = resp.json()["api_key"]
            yield served


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    key: str | None = "alice"  # a user's name, a literal key, or None for no header
    body: bytes | None = None
    content_type: str | None = "application/json"
    origin: bool = False
    answered_here: bool = True  # False: the lane must hand it over
    same_body: bool = True  # False for successes that store something new
    chunk: int | None = None  # send the body in pieces of this size


def _send(content: str, **extra: Any) -> bytes:
    return json.dumps({"content": content, **extra}).encode()


CASES: dict[str, Case] = {
    "count": Case("GET", "/messages/unread/count"),
    "count-origin": Case("GET", "/messages/unread/count", origin=True),
    "count-query": Case("GET", "/messages/unread/count?x=1"),
    "count-no-key": Case("GET", "/messages/unread/count", key=None, answered_here=False),
    "count-short-key": Case("GET", "/messages/unread/count", key="abc", answered_here=False),
    "count-unknown-key": Case("GET", "/messages/unread/count", key="f" * 64, answered_here=False),
    "count-viewer": Case("GET", "/messages/unread/count", key="vera"),
    "mark-all": Case("POST", "/messages/mark-all-read"),
    "mark-all-origin": Case("POST", "/messages/mark-all-read", origin=True),
    "mark-all-no-key": Case("POST", "/messages/mark-all-read", key=None, answered_here=False),
    "send": Case("POST", "/messages", body=_send("hello"), same_body=False),
    "send-origin": Case("POST", "/messages", body=_send("hi"), origin=True, same_body=False),
    "send-dm": Case("POST", "/messages", body=_send("psst", to_username="bob"), same_body=False),
    "send-charset": Case(
        "POST",
        "/messages",
        body=_send("with charset"),
        content_type="application/json; charset=utf-8",
        same_body=False,
    ),
    "send-chunked": Case(
        "POST", "/messages", body=_send("in pieces " * 50), chunk=64, same_body=False
    ),
    "send-dm-unknown": Case("POST", "/messages", body=_send("x", to_username="nobody-here")),
    "send-viewer": Case("POST", "/messages", key="vera", body=_send("may I?")),
    "send-no-key": Case("POST", "/messages", key=None, body=_send("x"), answered_here=False),
    "send-no-key-bad-body": Case("POST", "/messages", key=None, body=b"{", answered_here=False),
    "send-empty": Case("POST", "/messages", body=_send(""), answered_here=False),
    "send-too-long": Case(
        "POST", "/messages", body=_send("x" * (MAX_CONTENT_LENGTH + 1)), answered_here=False
    ),
    "send-held-limit": Case(
        "POST",
        "/messages",
        body=_send("x" * 10, pad="y" * MAX_HELD_BODY),  # unknown fields are ignored
        answered_here=False,
        same_body=False,
    ),
    "send-bad-json": Case("POST", "/messages", body=b'{"content": ', answered_here=False),
    "send-not-utf8": Case("POST", "/messages", body=b'{"content": "\xff"}', answered_here=False),
    "send-array": Case("POST", "/messages", body=b'["hello"]', answered_here=False),
    "send-deep": Case("POST", "/messages", body=b"[" * 100_000, answered_here=False),
    "send-huge-number": Case(
        "POST", "/messages", body=b'{"content": ' + b"9" * 5000 + b"}", answered_here=False
    ),
    "send-wrong-type": Case("POST", "/messages", body=b'{"content": 5}', answered_here=False),
    "send-text-plain": Case(
        "POST", "/messages", body=_send("x"), content_type="text/plain", answered_here=False
    ),
    "send-no-content-type": Case(
        "POST", "/messages", body=_send("x"), content_type=None, answered_here=False
    ),
    "send-vnd-json": Case(
        "POST",
        "/messages",
        body=_send("x"),
        content_type="application/vnd.api+json",
        answered_here=False,
        same_body=False,
    ),
    # Python's json module takes these, pydantic's parser does not: the app answers.
    "send-byte-order-mark": Case(
        "POST",
        "/messages",
        body=b"\xef\xbb\xbf" + _send("bom"),
        answered_here=False,
        same_body=False,
    ),
    "send-utf16": Case(
        "POST",
        "/messages",
        body=_send("wide").decode().encode("utf-16"),
        answered_here=False,
        same_body=False,
    ),
    "send-lone-surrogate": Case(
        "POST", "/messages", body=b'{"content": "\\ud800"}', answered_here=False
    ),
    "get-message-list": Case("GET", "/messages", answered_here=False, same_body=False),
}


async def _request(client: httpx.AsyncClient, served: Served, case: Case) -> httpx.Response:
    headers: dict[str, str] = {}
    if case.key is not None:
        headers["X-API-Key"] = served.keys.get(case.key, case.key)
    if case.content_type is not None and case.body is not None:
        headers["Content-Type"] = case.content_type
    if case.origin:
        headers["Origin"] = "https://web.example"
    content: bytes | AsyncIterator[bytes] | None = case.body
    if case.body is not None and case.chunk is not None:
        content = _chunks(case.body, case.chunk)
    return await client.request(case.method, case.path, headers=headers, content=content)


def _shape(value: Any) -> Any:
    """The fields of a body, without the values that differ between two stores."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items() if key not in {"id", "seq"}}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return value


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_lane_answers_as_the_app_does(served: Served, name: str) -> None:
    case = CASES[name]
    expected = await _request(served.plain, served, case)
    calls = served.inner.calls
    got = await _request(served.hot, served, case)
    handed_over = served.inner.calls - calls
    assert handed_over == (0 if case.answered_here else 1), "answered by the wrong layer"
    assert got.status_code == expected.status_code, got.text
    if case.same_body:
        assert sorted(got.headers.multi_items()) == sorted(expected.headers.multi_items())
        assert got.content == expected.content
    else:
        drop = {"content-length"}
        assert sorted(h for h in got.headers.multi_items() if h[0] not in drop) == sorted(
            h for h in expected.headers.multi_items() if h[0] not in drop
        )
        got_body, expected_body = got.json(), expected.json()
        if isinstance(got_body, dict) and "timestamp" in got_body:
            got_body.pop("timestamp")
            expected_body.pop("timestamp")
        assert _shape(got_body) == _shape(expected_body)


async def test_a_send_through_the_lane_is_stored_and_counted(served: Served) -> None:
    """What the lane answered is what the app then serves: the stored message, and the
    recipient's unread count moves by one."""
    bob = {"X-API-Key": served.keys["bob"]}
    before = (await served.hot.get("/messages/unread/count", headers=bob)).json()
    sent = await served.hot.post(
        "/messages", headers={"X-API-Key": served.keys["alice"]}, json={"content": "stored?"}
    )
    assert sent.status_code == 201
    stored = await served.plain.get(f"/messages/{sent.json()['id']}", headers=bob)
    assert stored.json() == sent.json()
    after = (await served.hot.get("/messages/unread/count", headers=bob)).json()
    assert after["unread_room_messages"] == before["unread_room_messages"] + 1
    marked = await served.hot.post("/messages/mark-all-read", headers=bob)
    assert marked.json() == {"marked_as_read": after["total_unread"]}
    assert (await served.hot.get("/messages/unread/count", headers=bob)).json()["total_unread"] == 0
