"""Bots end to end (PROTOCOL.md 4.6): the REST endpoints through the SDK and raw HTTP, their
refusals with upstream's texts, what deleting or rotating does to open sockets, the bot flag
on every message shape, and the server's loop breakers (per-bot send rate, bot-turn cap).

The module's server runs with the bot limits off (tests/serverproc.py) and takes loopback
webhook URLs (bots get webhooks here; nothing listens on them unless a test's receiver
does); the tests of the limits start servers of their own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Account, LiveServer, NewDatabase, NewServer, stop_server
from tests.e2e.test_webhooks import Receiver
from tests.serverproc import ServerProcess, free_port
from tests.wsclient import Frame, WsClient, is_delivery
from token_bowl_chat import AsyncTokenBowlClient, TokenBowlClient, TokenBowlWebSocket
from token_bowl_chat.exceptions import AuthenticationError, RateLimitError
from token_bowl_chat.models import BotProfileResponse, CreateBotResponse

MASK = "*" * 60


@pytest.fixture(scope="module")
def bot_server(
    tmp_path_factory: pytest.TempPathFactory, new_server: NewServer
) -> Iterator[LiveServer]:
    env = {
        "TOKEN_BOWL_WEBHOOK_ALLOW_PRIVATE": "true",
        "TOKEN_BOWL_WEBHOOK_WORKERS": "1",
        # Bots' webhooks on closed ports fail at once; retries must not hold the one worker.
        "TOKEN_BOWL_WEBHOOK_BACKOFF": "0.01",
    }
    proc = new_server(tmp_path_factory.mktemp("bots"), env=env)
    try:
        proc.start()
        yield LiveServer(proc)
    finally:
        stop_server(proc)


def auth(account: Account | str) -> dict[str, str]:
    return {"X-API-Key": account if isinstance(account, str) else account.api_key}


def make_bot(server: LiveServer, owner: Account, **fields: object) -> Account:
    name = server.unique("bot")
    resp = httpx.post(
        f"{server.http_url}/bots", json={"username": name, **fields}, headers=auth(owner)
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return Account(id=body["id"], username=body["username"], api_key=body["api_key"])


def closed_port_url(path: str) -> str:
    """A webhook target nothing listens on (loopback only, never another machine)."""
    return f"http://127.0.0.1:{free_port()}{path}"


# --- the endpoints through the SDK ------------------------------------------------------------


def test_bot_lifecycle_with_the_sync_sdk(bot_server: LiveServer) -> None:
    owner = bot_server.register()
    name = bot_server.unique("sdkbot")
    hook = closed_port_url("/bot")
    with TokenBowlClient(api_key=owner.api_key, base_url=bot_server.http_url) as client:
        created = client.create_bot(name, emoji="🤖", webhook_url=hook)
        assert isinstance(created, CreateBotResponse)
        assert (created.username, created.emoji, created.webhook_url) == (name, "🤖", hook)
        assert (created.created_by_id, created.created_by) == (owner.id, owner.username)
        assert len(created.api_key) == 64
        uuid.UUID(created.id)
        assert created.webhook_secret is not None  # the webhook's signing secret, shown once
        assert created.webhook_secret.startswith("whsec_")

        (listed,) = client.get_my_bots()
        assert isinstance(listed, BotProfileResponse)
        assert listed.id == created.id and listed.created_by == owner.username
        # The key is shown once; afterwards only its tail (upstream listed it in plaintext).
        assert listed.api_key == MASK + created.api_key[-4:]
        assert listed.created_at.endswith("+00:00")
        assert listed.webhook_url == hook and listed.webhook_secret is None

        updated = client.update_bot(created.id, emoji="🦾")
        assert (updated.emoji, updated.webhook_url) == ("🦾", hook)  # None: unchanged
        assert updated.webhook_secret is None  # no new URL, no new secret
        assert client.get_my_bots()[0].emoji == "🦾"

        with TokenBowlClient(api_key=created.api_key, base_url=bot_server.http_url) as bot:
            sent = bot.send_message("beep from the bot")
            assert sent.from_user_bot is True and sent.from_user_emoji == "🦾"
            assert bot.get_my_profile().role == "bot"

        rotated = client.regenerate_bot_api_key(created.id)
        assert rotated["message"] == "Bot API key regenerated successfully"
        new_key = rotated["api_key"]
        assert new_key != created.api_key and len(new_key) == 64
        old = TokenBowlClient(api_key=created.api_key, base_url=bot_server.http_url)
        with old, pytest.raises(AuthenticationError):
            old.get_my_profile()
        with TokenBowlClient(api_key=new_key, base_url=bot_server.http_url) as bot:
            assert bot.get_my_profile().id == created.id

        assert client.delete_bot(created.id) is None
        assert client.get_my_bots() == []
        gone = TokenBowlClient(api_key=new_key, base_url=bot_server.http_url)
        with gone, pytest.raises(AuthenticationError):
            gone.get_my_profile()
        # Its message stays, still flagged as a bot's, under the name it had.
        page = client.get_messages(limit=1000)
        (kept,) = [m for m in page.messages if m.id == sent.id]
        assert (kept.from_username, kept.from_user_bot, kept.from_user_id) == (name, True, "")


async def test_bot_lifecycle_with_the_async_sdk(bot_server: LiveServer) -> None:
    owner = bot_server.register()
    async with AsyncTokenBowlClient(api_key=owner.api_key, base_url=bot_server.http_url) as c:
        first = await c.create_bot(bot_server.unique("abot"))
        second = await c.create_bot(bot_server.unique("abot"), emoji="⚙")
        assert [b.id for b in await c.get_my_bots()] == [first.id, second.id]  # oldest first
        hook = closed_port_url("/hook")
        hooked = await c.update_bot(first.id, webhook_url=hook)
        assert hooked.webhook_url == hook and hooked.webhook_secret is not None
        key = (await c.regenerate_bot_api_key(second.id))["api_key"]
        async with AsyncTokenBowlClient(api_key=key, base_url=bot_server.http_url) as bot:
            assert (await bot.send_message("async beep")).from_user_bot is True
        await c.delete_bot(first.id)
        assert [b.id for b in await c.get_my_bots()] == [second.id]


# --- refusals ---------------------------------------------------------------------------------


def test_who_may_create_and_manage_bots(bot_server: LiveServer) -> None:
    url = bot_server.http_url
    owner, stranger = bot_server.register(), bot_server.register()
    viewer = bot_server.register(role="viewer")
    bot = make_bot(bot_server, owner, emoji="🤖")
    other_bot = make_bot(bot_server, stranger)

    for caller, role in ((viewer, "viewer"), (bot, "bot")):
        # 403 before the body is looked at, as upstream answers (an empty body too).
        for body in ({"username": bot_server.unique("nope")}, {}):
            resp = httpx.post(f"{url}/bots", json=body, headers=auth(caller))
            assert resp.status_code == 403, resp.text
            assert resp.json() == {
                "detail": f"Permission 'bots:create' required. Your role '{role}' does not "
                "have this permission.",
                "code": "permission_denied",
            }
        assert httpx.get(f"{url}/bots/me", headers=auth(caller)).json() == []

    base = f"{url}/bots/{bot.id}"
    attempts = [
        ("PATCH", base, {"emoji": "x"}, f"You don't have permission to update bot {bot.username}"),
        ("DELETE", base, None, f"You don't have permission to delete bot {bot.username}"),
        (
            "POST",
            f"{base}/regenerate-api-key",
            None,
            f"You don't have permission to regenerate API key for bot {bot.username}",
        ),
    ]
    for caller in (stranger, viewer, bot, other_bot):
        for method, target, body, text in attempts:
            resp = httpx.request(method, target, json=body, headers=auth(caller))
            assert resp.status_code == 403, (caller, method, resp.text)
            assert resp.json() == {"detail": text, "code": "permission_denied"}
    # Nothing changed: same emoji, the key still works.
    (listed,) = httpx.get(f"{url}/bots/me", headers=auth(owner)).json()
    assert listed["emoji"] == "🤖"
    assert httpx.get(f"{url}/users/me", headers=auth(bot)).status_code == 200

    # An admin manages anyone's bot, and still lists only their own.
    admin = bot_server.admin
    resp = httpx.patch(base, json={"emoji": "A"}, headers=auth(admin))
    assert resp.status_code == 200 and resp.json()["emoji"] == "A"
    assert resp.json()["created_by"] == owner.username
    assert bot.id not in [b["id"] for b in httpx.get(f"{url}/bots/me", headers=auth(admin)).json()]
    resp = httpx.post(f"{base}/regenerate-api-key", headers=auth(admin))
    assert resp.status_code == 200
    assert httpx.delete(base, headers=auth(admin)).status_code == 204
    assert httpx.get(f"{url}/bots/me", headers=auth(owner)).json() == []


def test_bad_ids_unknown_bots_taken_names_and_logos(bot_server: LiveServer) -> None:
    url = bot_server.http_url
    owner = bot_server.register()
    bot = make_bot(bot_server, owner)
    member = bot_server.register()
    unknown = str(uuid.uuid4())
    for method, suffix, body in (
        ("PATCH", "", {"emoji": "x"}),
        ("DELETE", "", None),
        ("POST", "/regenerate-api-key", None),
    ):
        resp = httpx.request(
            method, f"{url}/bots/not-a-uuid{suffix}", json=body, headers=auth(owner)
        )
        assert resp.status_code == 400, resp.text
        assert resp.json() == {"detail": "Invalid bot ID format: not-a-uuid", "code": "invalid_id"}
        for missing in (unknown, member.id):  # a user who is not a bot is no bot either
            resp = httpx.request(
                method, f"{url}/bots/{missing}{suffix}", json=body, headers=auth(owner)
            )
            assert resp.status_code == 404, resp.text
            assert resp.json() == {"detail": f"Bot {missing} not found", "code": "bot_not_found"}
    # Ids are parsed as UUIDs, so case does not matter.
    resp = httpx.patch(f"{url}/bots/{bot.id.upper()}", json={"emoji": "U"}, headers=auth(owner))
    assert resp.status_code == 200 and resp.json()["id"] == bot.id

    for taken in (bot.username, member.username):
        resp = httpx.post(f"{url}/bots", json={"username": taken}, headers=auth(owner))
        assert resp.status_code == 409, resp.text
        assert resp.json() == {
            "detail": f"Username {taken} already exists",
            "code": "username_taken",
        }
    resp = httpx.post(f"{url}/register", json={"username": bot.username})
    assert resp.status_code == 409

    # Bots use emoji, never logos: refused on create and update, and on the bot's own profile.
    resp = httpx.post(
        f"{url}/bots",
        json={"username": bot_server.unique("logo"), "logo": "openai.png"},
        headers=auth(owner),
    )
    assert resp.status_code == 422, resp.text
    (item,) = resp.json()["detail"]
    assert item["loc"] == ["body", "logo"]
    assert "Bots can only use emoji for avatars, not logos" in item["msg"]
    resp = httpx.patch(f"{url}/bots/{bot.id}", json={"logo": "openai.png"}, headers=auth(owner))
    assert resp.status_code == 422, resp.text
    resp = httpx.patch(f"{url}/users/me/logo", json={"logo": "openai.png"}, headers=auth(bot))
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"] == "Bots can only use emoji for avatars, not logos"
    assert httpx.get(f"{url}/users/me", headers=auth(bot)).json()["logo"] is None

    for body in ({"username": ""}, {"username": "x" * 51}, {"username": "e", "emoji": "x" * 11}):
        resp = httpx.post(f"{url}/bots", json=body, headers=auth(owner))
        assert resp.status_code == 422, (body, resp.text)
    resp = httpx.post(
        f"{url}/bots", json={"username": "w", "webhook_url": "ftp://x"}, headers=auth(owner)
    )
    assert resp.status_code == 422
    # Nothing of that was created.
    assert [b["id"] for b in httpx.get(f"{url}/bots/me", headers=auth(owner)).json()] == [bot.id]


# --- open sockets -----------------------------------------------------------------------------


async def _closed_with(ws: WsClient) -> int | None:
    with pytest.raises(websockets.ConnectionClosed) as info:
        await ws.recv_until(lambda f: False, timeout=10)
    return info.value.rcvd.code if info.value.rcvd is not None else None


async def test_rotating_or_deleting_a_bot_closes_its_sockets(bot_server: LiveServer) -> None:
    owner = bot_server.register()
    bot = make_bot(bot_server, owner)
    ws = await WsClient.connect(bot_server.ws_url, bot.api_key)
    legacy = await WsClient.connect(bot_server.ws_url, bot.api_key, legacy=True)
    async with httpx.AsyncClient(base_url=bot_server.http_url, headers=auth(owner)) as http:
        resp = await http.post(f"/bots/{bot.id}/regenerate-api-key")
        assert resp.status_code == 200
        new_key = resp.json()["api_key"]
        assert await _closed_with(ws) == 1008
        assert await _closed_with(legacy) == 1008
        with pytest.raises(websockets.InvalidStatus) as refused:
            await WsClient.connect(bot_server.ws_url, bot.api_key)
        assert refused.value.response.status_code == 401

        ws = await WsClient.connect(bot_server.ws_url, new_key)
        assert (await ws.request({"content": "still here"}))["type"] == "message_sent"
        assert (await http.delete(f"/bots/{bot.id}")).status_code == 204
        assert await _closed_with(ws) == 1008
        with pytest.raises(websockets.InvalidStatus) as refused:
            await WsClient.connect(bot_server.ws_url, new_key)
        assert refused.value.response.status_code == 401


# --- the bot flag on every message shape ------------------------------------------------------


async def test_bot_messages_are_flagged_in_every_shape(bot_server: LiveServer) -> None:
    """Each place a message is shown: REST send, history, one message, unread lists; WS
    message_sent, live delivery (extended and legacy), history and unread frames, the resume
    replay; the webhook body. A human's message next to it says false everywhere."""
    receiver = Receiver()
    await receiver.start()
    try:
        await _check_every_shape(bot_server, receiver)
    finally:
        await receiver.close()


async def _check_every_shape(server: LiveServer, receiver: Receiver) -> None:
    owner = server.register()
    reader = server.register()
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        resp = await http.patch(
            "/users/me/webhook", json={"webhook_url": receiver.url("/reader")}, headers=auth(reader)
        )
        assert resp.status_code == 200, resp.text
        bot = make_bot(server, owner, emoji="🤖")
        live = await WsClient.connect(server.ws_url, reader.api_key)
        legacy = await WsClient.connect(server.ws_url, reader.api_key, legacy=True)
        bot_ws = await WsClient.connect(server.ws_url, bot.api_key)
        hello = await live.recv_until(lambda f: f.get("type") == "hello")
        try:
            rest_sent = await http.post("/messages", json={"content": "rest"}, headers=auth(bot))
            assert rest_sent.status_code == 201
            ws_sent = await bot_ws.request({"content": "ws"})
            human = await http.post("/messages", json={"content": "human"}, headers=auth(owner))
            ids = {"rest": rest_sent.json()["id"], "ws": ws_sent["message"]["id"]}
            human_id = human.json()["id"]

            shapes: dict[str, list[dict[str, Any]]] = {
                "REST send": [rest_sent.json(), human.json()],
                "WS message_sent": [ws_sent["message"]],
            }
            for name, ws in (("WS delivery", live), ("WS legacy delivery", legacy)):
                shapes[name] = [
                    await ws.recv_until(lambda f, i=i: is_delivery(f) and f["id"] == i)
                    for i in (*ids.values(), human_id)
                ]
            page = (await http.get("/messages", headers=auth(reader))).json()["messages"]
            shapes["REST history"] = page
            shapes["REST one message"] = [
                (await http.get(f"/messages/{i}", headers=auth(reader))).json()
                for i in (*ids.values(), human_id)
            ]
            shapes["REST unread"] = (
                await http.get("/messages/unread", headers=auth(reader))
            ).json()
            shapes["WS history"] = (await live.request({"type": "get_messages"}))["messages"]
            shapes["WS unread"] = (await live.request({"type": "get_unread_messages"}))["messages"]
            hits = await receiver.wait_for("/reader", 3)
            shapes["webhook"] = [json.loads(hit.body) for hit in hits]
            resumed = await WsClient.connect(
                server.ws_url, reader.api_key, query=f"&since_seq={hello['last_seq']}"
            )
            try:
                await resumed.recv_until(lambda f: f.get("type") == "resumed")
                shapes["WS resume replay"] = [f for f in resumed.seen if is_delivery(f)]
            finally:
                await resumed.close()
        finally:
            for ws in (live, legacy, bot_ws):
                await ws.close()

    expected = {ids["rest"]: True, ids["ws"]: True, human_id: False}
    present = {"REST send": {ids["rest"], human_id}, "WS message_sent": {ids["ws"]}}
    for name, shown in shapes.items():
        flags = {m["id"]: m["from_user_bot"] for m in shown if m["id"] in expected}
        wanted = present.get(name, set(expected))
        assert flags == {i: expected[i] for i in wanted}, (name, shown)
        for m in shown:
            if m["id"] in ids.values():
                assert m["from_user_emoji"] == "🤖" and m["from_username"] == bot.username, name


# --- loop breakers ----------------------------------------------------------------------------


CAP = 4


@pytest.fixture(scope="module")
def limits_server(
    tmp_path_factory: pytest.TempPathFactory, new_database: NewDatabase
) -> Iterator[LiveServer]:
    """Bots held to 6 sends at once (then one per 100 s) and the room to 4 bot messages in a
    row. The room is shared: each test starts with a human message, which resets the count."""
    data_dir = tmp_path_factory.mktemp("limits")
    env = {
        "TOKEN_BOWL_BOT_SEND_RATE": "0.01",
        "TOKEN_BOWL_BOT_SEND_BURST": "6",
        "TOKEN_BOWL_BOT_TURN_CAP": str(CAP),
    }
    proc = ServerProcess(data_dir, env=env, database_url=new_database(data_dir))
    proc.start()
    try:
        yield LiveServer(proc)
    finally:
        proc.stop()


async def post(http: httpx.AsyncClient, sender: Account, content: str) -> httpx.Response:
    return await http.post("/messages", json={"content": content}, headers=auth(sender))


async def test_bots_have_their_own_stricter_send_rate(limits_server: LiveServer) -> None:
    server = limits_server
    owner = server.register()
    bot = make_bot(server, owner)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        # A human between the bot's messages, so the turn cap never applies here.
        for i in range(6):
            assert (await post(http, owner, f"h{i}")).status_code == 201
            resp = await post(http, bot, f"b{i}")
            assert resp.status_code == 201, resp.text
        assert (await post(http, owner, "h6")).status_code == 201
        resp = await post(http, bot, "too fast")
        assert resp.status_code == 429 and resp.json()["code"] == "rate_limited", resp.text
        assert int(resp.headers["Retry-After"]) >= 1
        ws = await WsClient.connect(server.ws_url, bot.api_key)
        try:
            refused = await ws.request({"content": "too fast, over ws"})
            assert refused["type"] == "error" and refused["code"] == "rate_limited"
        finally:
            await ws.close()
        # People are held only to the per-user limit.
        for i in range(10):
            assert (await post(http, owner, f"more {i}")).status_code == 201
        page = (await http.get("/messages", headers=auth(owner))).json()["messages"]
    mine = [m["content"] for m in page if m["from_username"] == bot.username]
    assert sorted(mine) == [f"b{i}" for i in range(6)]


async def test_the_bot_turn_cap_stops_two_bots_talking_until_a_human_speaks(
    limits_server: LiveServer,
) -> None:
    server = limits_server
    owner = server.register()
    ping, pong, third = (make_bot(server, owner) for _ in range(3))
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        assert (await post(http, owner, "let us begin")).status_code == 201
        human_ws = await WsClient.connect(server.ws_url, owner.api_key)
        ping_ws = await WsClient.connect(server.ws_url, ping.api_key)
        third_sdk = TokenBowlWebSocket(
            api_key=third.api_key, base_url=server.http_url, reconnect=False
        )
        await third_sdk.connect()
        try:
            for turn in range(CAP):  # ping over WS, pong over REST, taking turns
                if turn % 2 == 0:
                    reply = await ping_ws.request({"content": f"turn {turn}"})
                    assert reply["type"] == "message_sent", reply
                else:
                    resp = await post(http, pong, f"turn {turn}")
                    assert resp.status_code == 201, resp.text
            refused = await ping_ws.request({"content": "one more", "client_message_id": "c1"})
            assert refused["type"] == "error" and refused["code"] == "bot_turn_limit", refused
            assert f"at most {CAP} bot messages in a row" in refused["error"]
            resp = await post(http, pong, "me too")
            assert resp.status_code == 429, resp.text
            assert resp.json()["code"] == "bot_turn_limit"
            assert "Retry-After" not in resp.headers  # no time helps: a human must post
            # The SDK raises its RateLimitError with the code.
            with pytest.raises(RateLimitError) as info:
                await third_sdk.send_message("and me")
            assert info.value.code == "bot_turn_limit"

            said = await post(http, owner, "enough")
            assert said.status_code == 201
            # The refused send, retried with its client id, now goes through (stored once).
            again = await ping_ws.request({"content": "one more", "client_message_id": "c1"})
            assert again["type"] == "message_sent", again
            assert (await third_sdk.send_message("now me")).from_user_bot is True
            page = (await http.get("/messages", headers=auth(owner))).json()["messages"]

            turns = [f"turn {t}" for t in range(CAP)]
            contents = [m["content"] for m in reversed(page)]
            start = contents.index("let us begin")
            assert contents[start:] == ["let us begin", *turns, "enough", "one more", "now me"]
            # The human saw each stored bot message once and never a refused one.
            delivered: list[Frame] = []
            while len(delivered) < CAP + 2:
                delivered.append(await human_ws.recv_until(is_delivery))
            assert [f["content"] for f in delivered] == [*turns, "one more", "now me"]
        finally:
            await third_sdk.disconnect()
            await human_ws.close()
            await ping_ws.close()


@pytest.fixture
async def shared_database_servers(
    tmp_path: Path, new_database: NewDatabase
) -> AsyncIterator[list[ServerProcess]]:
    """Two server processes on one PostgreSQL database (a cap of 5); on SQLite, which is one
    process per database, one server."""
    url = new_database(tmp_path)
    count = 1 if url is None else 2
    url = url or f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    procs: list[ServerProcess] = []
    try:
        for i in range(count):
            data_dir = tmp_path / f"node{i}"
            data_dir.mkdir()
            proc = ServerProcess(data_dir, env={"TOKEN_BOWL_BOT_TURN_CAP": "5"}, database_url=url)
            procs.append(proc)
            await asyncio.to_thread(proc.start)
        yield procs
    finally:
        for proc in procs:
            await asyncio.to_thread(proc.stop)


async def test_the_turn_cap_is_exact_for_concurrent_bots_across_server_processes(
    shared_database_servers: list[ServerProcess],
) -> None:
    servers = [LiveServer(proc) for proc in shared_database_servers]
    owner = servers[0].register()
    bots = [make_bot(servers[0], owner) for _ in range(4)]
    async with httpx.AsyncClient(timeout=30) as http:

        async def send(i: int, tag: str) -> int:
            server, bot = servers[i % len(servers)], bots[i % len(bots)]
            resp = await http.post(
                f"{server.http_url}/messages", json={"content": f"{tag}{i}"}, headers=auth(bot)
            )
            assert resp.status_code in (201, 429), resp.text
            if resp.status_code == 429:
                assert resp.json()["code"] == "bot_turn_limit"
            return resp.status_code

        for tag in ("a", "b"):
            statuses = await asyncio.gather(*(send(i, tag) for i in range(24)))
            assert statuses.count(201) == 5, statuses
            resp = await http.post(
                f"{servers[-1].http_url}/messages", json={"content": "human"}, headers=auth(owner)
            )
            assert resp.status_code == 201
        page = await http.get(
            f"{servers[0].http_url}/messages", params={"limit": 100}, headers=auth(owner)
        )
    flags = [m["from_user_bot"] for m in reversed(page.json()["messages"])]
    assert flags == [True] * 5 + [False] + [True] * 5 + [False]


def test_a_bot_webhook_to_a_refused_address_creates_nothing(live_server: LiveServer) -> None:
    """The shared server keeps the default: no loopback or private webhook targets."""
    owner = live_server.register()
    name = live_server.unique("hooked")
    resp = httpx.post(
        f"{live_server.http_url}/bots",
        json={"username": name, "webhook_url": closed_port_url("/x")},
        headers=auth(owner),
    )
    assert resp.status_code == 422, resp.text
    (item,) = resp.json()["detail"]
    assert item["loc"] == ["body", "webhook_url"] and item["type"] == "webhook_url_refused"
    assert httpx.get(f"{live_server.http_url}/bots/me", headers=auth(owner)).json() == []
    resp = httpx.post(f"{live_server.http_url}/bots", json={"username": name}, headers=auth(owner))
    assert resp.status_code == 201, resp.text  # the name was not taken either
    bot = Account(resp.json()["id"], name, resp.json()["api_key"])
    resp = httpx.patch(
        f"{live_server.http_url}/bots/{bot.id}",
        json={"webhook_url": "http://10.0.0.1/hook"},
        headers=auth(owner),
    )
    assert resp.status_code == 422, resp.text
    (listed,) = httpx.get(f"{live_server.http_url}/bots/me", headers=auth(owner)).json()
    assert listed["webhook_url"] is None
