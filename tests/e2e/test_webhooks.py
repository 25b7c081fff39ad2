"""Webhooks end to end (PROTOCOL.md section 7.9, docs/protocol-extensions.md "Webhooks"): a
real server posts to a real HTTP receiver on 127.0.0.1, in the background, signed with each
owner's secret; the owner reads the outcomes; loopback is refused unless allowed.

The servers run one webhook worker, so messages are handled in send order and a later
message's delivery proves every earlier one has been answered: "nothing arrived" is checked
that way, or by the recorded outcome of the delivery itself, not by waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import Account, LiveServer
from tests.waiting import eventually
from tests.wsclient import WsClient
from token_bowl_chat import AsyncTokenBowlClient, TokenBowlClient
from token_bowl_chat.models import WebhookDelivery, WebhookDeliveryOutcome

LOG_SIZE = 3


@dataclass
class Hit:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Script:
    """How the receiver answers on one path: queued statuses (then 200), an optional hold."""

    statuses: list[int] = field(default_factory=list)
    hold: asyncio.Event | None = None


class Receiver:
    """A minimal HTTP/1.1 endpoint on 127.0.0.1: one request per connection, every request
    recorded before it is answered."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.scripts: dict[str, Script] = {}
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for script in self.scripts.values():
            if script.hold is not None:
                script.hold.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Hit]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.at(path)) >= count)
        return self.at(path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readuntil(b"\r\n")).decode()
            headers: dict[str, str] = {}
            while (line := (await reader.readuntil(b"\r\n")).decode()) != "\r\n":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            path = request_line.split(" ")[1]
            async with self._changed:
                self.hits.append(Hit(path, headers, body))
                self._changed.notify_all()
            script = self.scripts.get(path, Script())
            if script.hold is not None:
                await script.hold.wait()
            status = script.statuses.pop(0) if script.statuses else 200
            extra = "Location: /redirected\r\n" if 300 <= status < 400 else ""
            writer.write(
                f"HTTP/1.1 {status} Status\r\n{extra}Content-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the server gave up on this request (timeout or shutdown)
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """Local receivers are on 127.0.0.1, so this server allows private addresses."""
    return make_server(
        TOKEN_BOWL_WEBHOOK_WORKERS="1",
        TOKEN_BOWL_WEBHOOK_BACKOFF="0.05",
        TOKEN_BOWL_WEBHOOK_ALLOW_PRIVATE="true",
        TOKEN_BOWL_WEBHOOK_LOG_SIZE=str(LOG_SIZE),
    )


def set_webhook(server: LiveServer, account: Account, url: str | None) -> httpx.Response:
    return httpx.patch(
        f"{server.http_url}/users/me/webhook",
        json={"webhook_url": url},
        headers={"X-API-Key": account.api_key},
    )


def webhook_secret(server: LiveServer, account: Account, url: str) -> str:
    """Set ``url`` as the account's webhook; the secret the answer shows once."""
    resp = set_webhook(server, account, url)
    assert resp.status_code == 200, resp.text
    secret = resp.json()["webhook_secret"]
    assert isinstance(secret, str) and secret.startswith("whsec_")
    return secret


def deliveries(server: LiveServer, account: Account) -> list[dict[str, object]]:
    resp = httpx.get(
        f"{server.http_url}/users/me/webhook/deliveries",
        headers={"X-API-Key": account.api_key},
    )
    assert resp.status_code == 200, resp.text
    body: list[dict[str, object]] = resp.json()
    return body


async def recorded(server: LiveServer, account: Account, message_id: str) -> dict[str, object]:
    """The owner's record of the delivery of ``message_id``, once it is stored (bounded)."""
    found: list[dict[str, object]] = []

    def stored() -> bool:
        found[:] = [d for d in deliveries(server, account) if d["message_id"] == message_id]
        return bool(found)

    await eventually(stored, timeout=10.0, what=f"no delivery record for {message_id}")
    return found[0]


def verify(secret: str, hit: Hit) -> bool:
    """What a receiver does (docs/protocol-extensions.md): HMAC of "<timestamp>." + body."""
    timestamp = hit.headers["x-token-bowl-timestamp"]
    signed = timestamp.encode() + b"." + hit.body
    expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, hit.headers["x-token-bowl-signature"])


async def post_message(
    server: LiveServer, sender: Account, content: str, to: str | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10.0) as http:
        body: dict[str, str] = {"content": content}
        if to is not None:
            body["to_username"] = to
        resp = await http.post("/messages", json=body, headers={"X-API-Key": sender.api_key})
    assert resp.status_code == 201, resp.text
    return resp


async def raw_delivery(client: WsClient, message_id: str, timeout: float = 5.0) -> str:
    """The exact text of the WebSocket frame delivering ``message_id``."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await client.conn.recv()
            assert isinstance(raw, str)
            if json.loads(raw).get("id") == message_id:
                return raw


async def test_room_and_dm_targets_and_exact_payload(
    server: LiveServer, receiver: Receiver
) -> None:
    alice, bob, carol = (server.register(name) for name in ("alice", "bob", "carol"))
    secrets = {
        a.username: webhook_secret(server, a, receiver.url(f"/{a.username}"))
        for a in (alice, bob, carol)
    }
    server.register("viewer", role="viewer", webhook_url=receiver.url("/viewer"))
    server.register("quiet")
    bob_ws = await WsClient.connect(server.ws_url, bob.api_key)
    try:
        room = await post_message(server, alice, "hello room")
        room_hits = [(await receiver.wait_for(f"/{n}", 1))[0] for n in ("bob", "carol")]
        room_frame = await raw_delivery(bob_ws, room.json()["id"])
        for hit in room_hits:
            # Byte for byte the WebSocket delivery, which is the REST MessageResponse.
            assert hit.body == room_frame.encode()
            assert json.loads(hit.body) == room.json()
            assert hit.headers["content-type"] == "application/json"
            assert hit.headers["user-agent"].startswith("token-bowl-chat-server/")
            assert verify(secrets[hit.path.strip("/")], hit)
            assert not verify(secrets["alice"], hit)  # each owner has their own secret
        assert (
            room_hits[0].headers["x-token-bowl-delivery"]
            != room_hits[1].headers["x-token-bowl-delivery"]
        )

        # A DM reaches its recipient even though bob is connected over WebSocket.
        dm = await post_message(server, alice, "psst", to="bob")
        bob_hits = await receiver.wait_for("/bob", 2)
        assert json.loads(bob_hits[1].body) == dm.json()
        assert dm.json()["to_user_id"] == bob.id
        assert bob_hits[1].body == (await raw_delivery(bob_ws, dm.json()["id"])).encode()

        await post_message(server, alice, "note to self", to="alice")

        # One worker: once carol's room message reached alice and bob, every earlier
        # message has been fully delivered, so anything missing now never comes.
        last = await post_message(server, carol, "sentinel")
        await receiver.wait_for("/alice", 1)
        await receiver.wait_for("/bob", 3)
    finally:
        await bob_ws.close()
    assert [json.loads(h.body)["id"] for h in receiver.at("/alice")] == [last.json()["id"]]
    assert [json.loads(h.body)["id"] for h in receiver.at("/carol")] == [room.json()["id"]]
    assert [json.loads(h.body)["id"] for h in receiver.at("/bob")] == [
        room.json()["id"],
        dm.json()["id"],
        last.json()["id"],
    ]
    assert receiver.at("/viewer") == []
    assert receiver.at("/redirected") == []


async def test_failures_are_retried_up_to_three_attempts(
    server: LiveServer, receiver: Receiver
) -> None:
    receiver.scripts["/flaky"] = Script(statuses=[500, 500])
    receiver.scripts["/moved"] = Script(statuses=[302, 302, 302])
    sender = server.register()
    flaky, moved = server.register(), server.register()
    flaky_secret = webhook_secret(server, flaky, receiver.url("/flaky"))
    webhook_secret(server, moved, receiver.url("/moved"))
    sentinel = server.register()
    webhook_secret(server, sentinel, receiver.url("/sentinel"))

    sent = await post_message(server, sender, "try again")
    hits = await receiver.wait_for("/flaky", 3)
    assert [h.body for h in hits] == [hits[0].body] * 3
    assert json.loads(hits[0].body) == sent.json()
    # One delivery, three attempts: the id stays, each attempt is signed afresh.
    delivery_id = hits[0].headers["x-token-bowl-delivery"]
    assert [h.headers["x-token-bowl-delivery"] for h in hits] == [delivery_id] * 3
    assert all(verify(flaky_secret, h) for h in hits)

    # The next message is handled after this one's deliveries finished (one worker).
    await post_message(server, sender, "sentinel", to=sentinel.username)
    await receiver.wait_for("/sentinel", 2)
    assert len(receiver.at("/flaky")) == 3  # the third attempt succeeded: no fourth
    assert len(receiver.at("/moved")) == 3  # a 3xx is a failure, and is not followed
    assert receiver.at("/redirected") == []

    # The owners read the outcomes.
    message_id = sent.json()["id"]
    record = await recorded(server, flaky, message_id)
    assert record["id"] == delivery_id
    assert (record["outcome"], record["attempts"], record["status_code"], record["error"]) == (
        "delivered",
        3,
        200,
        None,
    )
    assert record["url"] == f"http://127.0.0.1:{receiver.port}"  # no path: it may hold tokens
    record = await recorded(server, moved, message_id)
    assert (record["outcome"], record["attempts"], record["status_code"], record["error"]) == (
        "failed",
        3,
        302,
        "HTTP 302",
    )


async def test_a_hanging_receiver_does_not_delay_the_sender(
    server: LiveServer, receiver: Receiver
) -> None:
    held = asyncio.Event()
    receiver.scripts["/hang"] = Script(hold=held)
    sender = server.register()
    target = server.register(webhook_url=receiver.url("/hang"))

    sending = asyncio.create_task(
        post_message(server, sender, "are you there?", to=target.username)
    )
    # The delivery reached the receiver, which will not answer until ``held`` is set...
    (hit,) = await receiver.wait_for("/hang", 1)
    # ...yet the POST completes: it never waited for the webhook.
    resp = await asyncio.wait_for(sending, 5.0)
    assert not held.is_set()
    assert json.loads(hit.body) == resp.json()
    held.set()


async def test_secret_is_rotated_and_cleared_and_the_log_is_bounded(
    server: LiveServer, receiver: Receiver
) -> None:
    sender, owner = server.register(), server.register()
    first = webhook_secret(server, owner, receiver.url("/owner"))
    resp = httpx.post(
        f"{server.http_url}/users/me/webhook/secret", headers={"X-API-Key": owner.api_key}
    )
    assert resp.status_code == 200, resp.text
    second = resp.json()["webhook_secret"]
    assert second != first

    sent = [
        (await post_message(server, sender, f"dm {n}", to=owner.username)).json()["id"]
        for n in range(LOG_SIZE + 2)
    ]
    hits = await receiver.wait_for("/owner", len(sent))
    assert all(verify(second, h) and not verify(first, h) for h in hits)

    # The newest LOG_SIZE deliveries are kept, newest first.
    await recorded(server, owner, sent[-1])
    log = deliveries(server, owner)
    assert [d["message_id"] for d in log] == sent[::-1][:LOG_SIZE]
    assert all(d["outcome"] == "delivered" for d in log)

    # Clearing answers exactly as upstream (no secret key); without a webhook there is
    # nothing to rotate.
    resp = set_webhook(server, owner, None)
    assert resp.json() == {"message": "Webhook URL updated successfully", "webhook_url": ""}
    resp = httpx.post(
        f"{server.http_url}/users/me/webhook/secret", headers={"X-API-Key": owner.api_key}
    )
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:80/",
        "http://[ff02::1]/",
    ],
)
async def test_urls_that_can_never_be_delivered_to_are_refused_when_set(
    live_server: LiveServer, url: str
) -> None:
    account = live_server.register()
    resp = set_webhook(live_server, account, url)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["code"] == "validation_error"
    assert body["detail"][0]["loc"] == ["body", "webhook_url"]
    me = httpx.get(f"{live_server.http_url}/users/me", headers={"X-API-Key": account.api_key})
    assert me.json()["webhook_url"] is None


async def test_loopback_is_refused_unless_allowed(
    make_server: Callable[..., LiveServer], receiver: Receiver
) -> None:
    """Default settings: a loopback URL is refused when set, and one stored earlier (while the
    setting was on, or before this version) is refused at delivery: nothing is sent and the
    owner sees ``refused_address``."""
    server = make_server(TOKEN_BOWL_WEBHOOK_WORKERS="1")
    sender, owner = server.register(), server.register()
    for url in (receiver.url("/owner"), f"http://localhost:{receiver.port}/owner"):
        resp = set_webhook(server, owner, url)
        assert resp.status_code == 422, resp.text
        assert resp.json()["detail"][0]["type"] == "webhook_url_refused"

    engine = create_async_engine(server.proc.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE users SET webhook_url = :url WHERE id = :id"),
                {"url": receiver.url("/owner"), "id": owner.id},
            )
    finally:
        await engine.dispose()

    sent = await post_message(server, sender, "are you local?", to=owner.username)
    record = await recorded(server, owner, sent.json()["id"])
    assert (record["outcome"], record["attempts"], record["error"]) == (
        "refused_address",
        0,
        "loopback",
    )
    assert record["status_code"] is None
    assert receiver.hits == []


def test_registration_checks_the_url_and_shows_the_secret_once(live_server: LiveServer) -> None:
    name = live_server.unique("hooked")
    resp = httpx.post(
        f"{live_server.http_url}/register",
        json={"username": name, "webhook_url": "http://hooks.invalid/in"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["webhook_secret"].startswith("whsec_")
    key = resp.json()["api_key"]
    me = httpx.get(f"{live_server.http_url}/users/me", headers={"X-API-Key": key}).json()
    assert "webhook_secret" not in me and me["webhook_url"] == "http://hooks.invalid/in"
    httpx.patch(  # no webhook left behind on the shared server
        f"{live_server.http_url}/users/me/webhook",
        json={"webhook_url": None},
        headers={"X-API-Key": key},
    )

    plain = httpx.post(f"{live_server.http_url}/register", json={"username": name + "x"})
    assert "webhook_secret" not in plain.json()

    # Refused before the account exists: the name stays free.
    refused = live_server.unique("local")
    resp = httpx.post(
        f"{live_server.http_url}/register",
        json={"username": refused, "webhook_url": "http://127.0.0.1:9/in"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    live_server.register(refused)


async def test_sdk_clients_show_the_secret_rotate_it_and_read_deliveries(
    server: LiveServer, receiver: Receiver
) -> None:
    sender, owner = server.register(), server.register()
    with TokenBowlClient(api_key=owner.api_key, base_url=server.http_url) as client:
        hooked = await asyncio.to_thread(client.update_my_webhook, receiver.url("/sdk"))
        assert hooked["webhook_secret"].startswith("whsec_")
        rotated = await asyncio.to_thread(client.rotate_webhook_secret)
    secret = rotated["webhook_secret"]
    assert secret != hooked["webhook_secret"]

    sent = await post_message(server, sender, "via the sdk", to=owner.username)
    (hit,) = await receiver.wait_for("/sdk", 1)
    assert verify(secret, hit)
    await recorded(server, owner, sent.json()["id"])

    with TokenBowlClient(api_key=owner.api_key, base_url=server.http_url) as client:
        from_sync = await asyncio.to_thread(client.get_my_webhook_deliveries)
    async with AsyncTokenBowlClient(api_key=owner.api_key, base_url=server.http_url) as aclient:
        from_async = await aclient.get_my_webhook_deliveries(limit=1)
    assert from_sync == from_async
    (delivery,) = from_async
    assert isinstance(delivery, WebhookDelivery)
    assert delivery.id == hit.headers["x-token-bowl-delivery"]
    assert (delivery.message_id, delivery.outcome, delivery.attempts) == (
        sent.json()["id"],
        WebhookDeliveryOutcome.DELIVERED,
        1,
    )


async def test_a_url_set_by_an_admin_is_unsigned_until_its_owner_rotates(
    server: LiveServer, receiver: Receiver
) -> None:
    sender, owner = server.register(), server.register()
    old = webhook_secret(server, owner, receiver.url("/before"))
    resp = httpx.patch(
        f"{server.http_url}/admin/users/{owner.id}",
        json={"webhook_url": receiver.url("/after")},
        headers={"X-API-Key": server.admin.api_key},
    )
    assert resp.status_code == 200, resp.text
    await post_message(server, sender, "one", to=owner.username)
    (hit,) = await receiver.wait_for("/after", 1)
    assert "x-token-bowl-signature" not in hit.headers  # the old URL's secret is not used
    assert hit.headers["x-token-bowl-delivery"]

    resp = httpx.post(
        f"{server.http_url}/users/me/webhook/secret", headers={"X-API-Key": owner.api_key}
    )
    new = resp.json()["webhook_secret"]
    await post_message(server, sender, "two", to=owner.username)
    hits = await receiver.wait_for("/after", 2)
    assert verify(new, hits[1]) and not verify(old, hits[1])
