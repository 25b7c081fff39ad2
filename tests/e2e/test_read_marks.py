"""``GET /messages/read-marks``: an author learns who read their messages before they
connected, in the shapes the live receipts use (per-reader "up to" marks, single receipts)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Account, LiveServer
from tests.wsclient import WsClient


def _post(http: httpx.Client, who: Account, content: str, to: str | None = None) -> Any:
    body: dict[str, Any] = {"content": content}
    if to is not None:
        body["to_username"] = to
    resp = http.post("/messages", json=body, headers={"X-API-Key": who.api_key})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _marks(http: httpx.Client, who: Account, **params: Any) -> Any:
    resp = http.get("/messages/read-marks", params=params, headers={"X-API-Key": who.api_key})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _only(marks: list[dict[str, Any]], *names: str) -> dict[str, int]:
    return {m["read_by"]: m["up_to_seq"] for m in marks if m["read_by"] in names}


async def test_marks_made_on_every_path_are_reported_to_the_author(
    live_server: LiveServer,
) -> None:
    alice, bob, carol, dave = (live_server.register() for _ in range(4))
    names = (alice.username, bob.username, carol.username, dave.username)
    with httpx.Client(base_url=live_server.http_url) as http:
        room = [_post(http, alice, f"room {n}") for n in range(3)]
        dms = [_post(http, alice, f"dm {n}", to=bob.username) for n in range(2)]
        to_dave = _post(http, alice, "for dave", to=dave.username)
        # Nobody has read anything of Alice's yet.
        fresh = _marks(http, alice, after_seq=room[0]["seq"] - 1)
        assert _only(fresh["room"], *names) == {}
        assert _only(fresh["direct"], *names) == {}
        assert [r for r in fresh["receipts"] if r["read_by"] in names] == []

        bob_ws = await WsClient.connect(live_server.ws_url, bob.api_key)
        try:
            # Bob: the room in bulk, and his DMs from Alice in bulk (receipts rows).
            assert (await bob_ws.request({"type": "mark_room_read"}))["status"] == "marked_read"
            reply = await bob_ws.request(
                {"type": "mark_direct_read", "from_username": alice.username}
            )
            assert reply["count"] == 2
        finally:
            await bob_ws.close()
        # Carol: one room message, singly. Dave: everything at once (both cursors move).
        resp = http.post(f"/messages/{room[1]['id']}/read", headers={"X-API-Key": carol.api_key})
        assert resp.status_code == 204
        resp = http.post("/messages/mark-all-read", headers={"X-API-Key": dave.api_key})
        assert resp.status_code == 200
        # Sent after every mark: read by nobody.
        later = _post(http, alice, "room 3")

        marks = _marks(http, alice, after_seq=room[0]["seq"] - 1)
        # Bob and Dave have read every room message of Alice's up to room 2, not room 3.
        assert _only(marks["room"], *names) == {
            bob.username: room[2]["seq"],
            dave.username: room[2]["seq"],
        }
        # Dave's mark-all-read covers Alice's DM to him; Bob's DMs were read one by one.
        assert _only(marks["direct"], *names) == {dave.username: to_dave["seq"]}
        receipts = [r for r in marks["receipts"] if r["read_by"] in names]
        assert [(r["message_id"], r["read_by"]) for r in receipts] == [
            (dms[1]["id"], bob.username),
            (dms[0]["id"], bob.username),
            (room[1]["id"], carol.username),
        ]
        assert all(r["seq"] < later["seq"] and r["read_at"] for r in receipts)
        assert marks["has_more_receipts"] is False

        # A reader sees nothing of Alice's messages in their own marks.
        bobs = _marks(http, bob, after_seq=room[0]["seq"] - 1)
        assert _only(bobs["room"], *names) == {}
        assert bobs["receipts"] == []


async def test_after_seq_and_limit_bound_the_answer(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    with httpx.Client(base_url=live_server.http_url) as http:
        sent = [_post(http, alice, f"dm {n}", to=bob.username) for n in range(5)]
        for message in sent:
            resp = http.post(f"/messages/{message['id']}/read", headers={"X-API-Key": bob.api_key})
            assert resp.status_code == 204
        # Messages at or below after_seq are left out.
        marks = _marks(http, alice, after_seq=sent[2]["seq"])
        assert [r["message_id"] for r in marks["receipts"]] == [sent[4]["id"], sent[3]["id"]]
        # The newest first, at most limit, and the answer says more are left.
        marks = _marks(http, alice, after_seq=sent[0]["seq"] - 1, limit=3)
        assert [r["message_id"] for r in marks["receipts"]] == [m["id"] for m in sent[:1:-1]]
        assert marks["has_more_receipts"] is True


def test_bad_parameters_and_missing_key_are_refused(live_server: LiveServer) -> None:
    alice = live_server.register()
    headers = {"X-API-Key": alice.api_key}
    with httpx.Client(base_url=live_server.http_url) as http:
        assert http.get("/messages/read-marks").json()["code"] == "authentication_required"
        for params in (
            {"after_seq": -1},
            {"after_seq": 2**63},
            {"after_seq": "x"},
            {"limit": 0},
            {"limit": 1001},
        ):
            resp = http.get("/messages/read-marks", params=params, headers=headers)
            assert resp.status_code == 422, (params, resp.text)
            assert resp.json()["code"] == "validation_error"
        # A message id still finds the message: the new path shadows nothing.
        sent = _post(http, alice, "still reachable")
        resp = http.get(f"/messages/{sent['id']}", headers=headers)
        assert resp.status_code == 200 and resp.json()["id"] == sent["id"]


def test_a_deleted_message_is_not_named_in_the_marks(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    with httpx.Client(base_url=live_server.http_url) as http:
        kept, gone = (_post(http, alice, f"dm {n}", to=bob.username) for n in range(2))
        for message in (kept, gone):
            resp = http.post(f"/messages/{message['id']}/read", headers={"X-API-Key": bob.api_key})
            assert resp.status_code == 204
        resp = http.delete(f"/messages/{gone['id']}", headers={"X-API-Key": alice.api_key})
        assert resp.status_code == 204
        marks = _marks(http, alice, after_seq=kept["seq"] - 1)
        assert [r["message_id"] for r in marks["receipts"]] == [kept["id"]]
