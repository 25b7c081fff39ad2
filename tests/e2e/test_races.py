"""Requests that race each other on one account or one name: each gets a clear answer and the
state that results is one of the orders they could have run in."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import LiveServer
from tests.wsclient import WsClient


async def test_concurrent_renames_to_one_name_give_it_to_exactly_one(
    live_server: LiveServer,
) -> None:
    users = [live_server.register() for _ in range(8)]
    wanted = live_server.unique("contested")
    async with httpx.AsyncClient(base_url=live_server.http_url) as http:
        answers = await asyncio.gather(
            *(
                http.patch(
                    "/users/me/username",
                    json={"username": wanted},
                    headers={"X-API-Key": u.api_key},
                )
                for u in users
            )
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [409] * 7, [a.text for a in answers]
        assert all(a.json()["code"] == "username_taken" for a in answers if a.status_code == 409)
        winner = next(u for u, a in zip(users, answers, strict=True) if a.status_code == 200)
        everyone = (await http.get("/users", headers={"X-API-Key": winner.api_key})).json()
        assert [u["id"] for u in everyone if u["username"] == wanted] == [winner.id]


async def test_two_users_swapping_names_concurrently_never_share_one(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    async with httpx.AsyncClient(base_url=live_server.http_url) as http:
        for _ in range(10):
            a_name, b_name = live_server.unique("swap"), live_server.unique("swap")
            answers = await asyncio.gather(
                http.patch(
                    "/users/me/username",
                    json={"username": a_name},
                    headers={"X-API-Key": alice.api_key},
                ),
                http.patch(
                    "/users/me/username",
                    json={"username": b_name},
                    headers={"X-API-Key": bob.api_key},
                ),
            )
            assert [a.status_code for a in answers] == [200, 200]
            me = await http.get("/users/me", headers={"X-API-Key": alice.api_key})
            assert me.json()["username"] == a_name


async def test_renaming_while_sending_attributes_every_message_to_the_account(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    a = await WsClient.connect(live_server.ws_url, alice.api_key)
    new_name = live_server.unique("renamed")
    async with httpx.AsyncClient(base_url=live_server.http_url) as http:
        for i in range(10):
            await a.send({"content": f"r{i}", "to_username": bob.username, "request_id": i})
        renamed = await http.patch(
            "/users/me/username",
            json={"username": new_name},
            headers={"X-API-Key": alice.api_key},
        )
        assert renamed.status_code == 200
        for i in range(10):
            reply = await a.recv_until(lambda f, i=i: f.get("request_id") == i)
            assert reply["type"] == "message_sent"
        history = (await http.get("/messages/direct", headers={"X-API-Key": bob.api_key})).json()[
            "messages"
        ]
    mine = [m for m in history if m["from_user_id"] == alice.id]
    assert len(mine) == 10
    # Old messages render with the account's current name.
    assert {m["from_username"] for m in mine} == {new_name}
    await a.close()
