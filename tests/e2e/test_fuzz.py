"""Guarantee 8 under random input: malformed frames and bodies never crash anything.

Seeded random frames and request bodies (wrong types, nulls, nesting, huge and odd strings)
go to a server of the test's own; every frame must get a reply or an error frame on an open
connection, every request a status below 500, and the server log must show no traceback.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.wsclient import WsClient
from token_bowl_chat.protocol.commands import COMMAND_TYPES

FIELDS = [
    "content",
    "to_username",
    "message_id",
    "from_username",
    "username",
    "limit",
    "offset",
    "since",
    "request_id",
    "client_message_id",
    "type",
]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(11)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.randint(-(2**63), 2**63)
    if choice == 3:
        return rng.random() * 1e300
    if choice == 4:
        return "x" * rng.choice([0, 1, 50, 51, 10_000, 10_001, 100_000])
    if choice == 5:
        return (
            "".join(chr(rng.randrange(1, 0x10FFFF)) for _ in range(rng.randrange(20)))
            .encode("utf-8", "replace")
            .decode("utf-8", "replace")
        )
    if choice == 6:
        return rng.choice(["", " ", "null", "2025-13-40T99:00:00", "../../etc", "%00", "🤖"])
    if choice in (7, 8) and depth < 3:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice in (9, 10) and depth < 3:
        return {rng.choice(FIELDS): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return rng.choice(["alice", "room", "0" * 36])


def random_frame(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.05:
        return rng.choice(["", "{", "[]", "null", "42", '"text"', "{}" * 3])
    frame: dict[str, Any] = {}
    if kind < 0.9:
        frame["type"] = rng.choice([*COMMAND_TYPES, "nope", "", None, 7, ["message"]])
    for _ in range(rng.randrange(5)):
        frame[rng.choice(FIELDS)] = random_value(rng)
    return json.dumps(frame)


async def test_random_frames_get_answers_and_leave_the_connection_usable(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    alice, _bob = server.register(), server.register(username="alice")
    client = await WsClient.connect(server.ws_url, alice.api_key)
    rng = random.Random(20261126)
    for round_ in range(30):
        for _ in range(20):
            await client.send(random_frame(rng))
        # Whatever came before, the connection still answers, in order.
        reply = await client.request({"type": "get_unread_count"}, timeout=15)
        assert reply["type"] == "unread_count", (round_, reply)
    errors = [f for f in client.seen if f.get("type") == "error"]
    assert errors and all(isinstance(f.get("code"), str) and f["error"] for f in errors)
    assert not any(f.get("code") == "internal_error" for f in errors)
    await client.close()
    log = server.proc.log()
    assert "Traceback" not in log and " ERROR " not in log


ENDPOINTS = [
    ("POST", "/register"),
    ("POST", "/messages"),
    ("GET", "/messages"),
    ("GET", "/messages/direct"),
    ("GET", "/messages/unread"),
    ("POST", "/messages/mark-all-read"),
    ("POST", "/messages/{id}/read"),
    ("GET", "/messages/{id}"),
    ("GET", "/users/{id}"),
    ("PATCH", "/users/me/logo"),
    ("PATCH", "/users/me/webhook"),
    ("PATCH", "/users/me/username"),
]


def test_random_requests_never_get_a_5xx(make_server: Callable[..., LiveServer]) -> None:
    server = make_server()
    alice = server.register()
    rng = random.Random(7)
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": alice.api_key}) as http:
        for _ in range(400):
            method, path = rng.choice(ENDPOINTS)
            path = path.replace("{id}", str(random_value(rng)).replace("/", "%2F")[:200])
            params = {rng.choice(FIELDS): str(random_value(rng))[:300] for _ in range(2)}
            if rng.random() < 0.2:
                body: bytes = rng.choice([b"", b"{", b"\xff\xfe", b"[]", b"null"])
            else:
                body = json.dumps({rng.choice(FIELDS): random_value(rng)}).encode()
            resp = http.request(
                method,
                path,
                params=params,
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert resp.status_code < 500, (method, path, params, body[:200], resp.text)
            assert resp.status_code < 400 or "code" in resp.json(), resp.text
    assert "Traceback" not in server.proc.log()
