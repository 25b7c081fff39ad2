"""Webhooks end to end (PROTOCOL.md section 7.9): a real server posts to a real HTTP receiver
on 127.0.0.1, in the background.

The servers run one webhook worker, so messages are handled in send order and a later
message's delivery proves every earlier one has been answered: "nothing arrived" is checked
that way, not by waiting.
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

from tests.conftest import Account, LiveServer
from tests.wsclient import WsClient

SECRET = "e2e-secret"


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
    return make_server(
        TOKEN_BOWL_WEBHOOK_WORKERS="1",
        TOKEN_BOWL_WEBHOOK_BACKOFF="0.05",
        TOKEN_BOWL_WEBHOOK_SECRET=SECRET,
    )


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
    alice, bob, carol = (
        server.register(name, webhook_url=receiver.url(f"/{name}"))
        for name in ("alice", "bob", "carol")
    )
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
            expected = hmac.new(SECRET.encode(), hit.body, hashlib.sha256).hexdigest()
            assert hit.headers["x-token-bowl-signature"] == f"sha256={expected}"

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
    server.register(webhook_url=receiver.url("/flaky"))
    server.register(webhook_url=receiver.url("/moved"))
    sentinel = server.register(webhook_url=receiver.url("/sentinel"))

    sent = await post_message(server, sender, "try again")
    hits = await receiver.wait_for("/flaky", 3)
    assert [h.body for h in hits] == [hits[0].body] * 3
    assert json.loads(hits[0].body) == sent.json()

    # The next message is handled after this one's deliveries finished (one worker).
    await post_message(server, sender, "sentinel", to=sentinel.username)
    await receiver.wait_for("/sentinel", 2)
    assert len(receiver.at("/flaky")) == 3  # the third attempt succeeded: no fourth
    assert len(receiver.at("/moved")) == 3  # a 3xx is a failure, and is not followed
    assert receiver.at("/redirected") == []


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
