"""A hypothesis state machine drives a real server through its real clients and checks every
step against a brute-force model (tests/model/model.py).

Each run registers 3-4 members and a viewer, each with an open WebSocket (some in the
extended protocol, some legacy), then takes random steps: room sends and DMs (REST or
WebSocket, to oneself, to a viewer, to a name that does not exist, idempotent retries, several
at once), every way of marking read (one message, visible or not or nonexistent, over REST and
WebSocket; all, room, from one sender; a bulk mark racing others' sends), renames (free,
taken, one's own), key rotations, disconnects and resumes, the WebSocket read commands, and
sends by the viewer, which are refused. After every step, for every user: the unread counts,
both unread lists, the DM history, the room history, who is online, and every frame each open
socket received since the previous step (deliveries in ``seq`` order, read receipts,
``read_up_to``, pushed unread counts, presence, ``resumed``) must equal what the model says.

Edits and deletes (REST or WebSocket, the author's done, anyone else's or a deleted one's
refused) change the model's content and live messages; their pushes go to every extended
socket that can see the message, and a resume replays them (``resumed`` counts them too).

Bounded for CI by default; ``TOKEN_BOWL_MODEL=long`` runs many more and longer sequences.
With ``pytest --database postgresql`` the server runs on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import LiveServer
from tests.model.model import Marked, Message, Model, User, rendered
from tests.wsclient import Frame, WsClient, is_delivery
from token_bowl_chat_server.services.reads import LEGACY_RECEIPTS_PER_AUTHOR

PROFILES = {
    # CI: about a minute on a busy 2-core machine.
    "ci": settings(max_examples=10, stateful_step_count=20),
    # TOKEN_BOWL_MODEL=long: a deeper search, for a quiet machine and some patience.
    "long": settings(max_examples=100, stateful_step_count=50),
}
PAGE = 1000
ROOM_LIMIT = 300  # beyond this many room messages a run starts on a fresh server
TIMEOUT = 10.0

# No NUL (refused by validation) and no lone surrogates (cannot be UTF-8): valid content only.
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
CLIENT_ID = st.none() | st.sampled_from(["c1", "c2"])
INDEX = st.integers(0, 255)
ANY_COUNTS = ("unread_count", "any")
NO_SUCH_MESSAGE = "00000000-0000-4000-8000-000000000000"
NAME_TAIL = st.text("abcxyz-_.ÿé日", min_size=0, max_size=6)


T = TypeVar("T")


def pick(data: st.DataObject, items: Sequence[T], label: str) -> T:
    """One of ``items``, drawn as an index: the draw does not depend on how many there are
    (the list can differ between replays, which hypothesis must not see as flakiness), and it
    shrinks towards the first."""
    item = items[data.draw(INDEX, label=label) % len(items)]
    note(f"{label}: {item!r}")
    return item


@dataclass
class Stats:
    runs: int = 0
    steps: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    checking: float = 0.0  # seconds spent comparing the server with the model


@dataclass(frozen=True)
class ChangeEvent:
    """An edit or a delete as a resume replays it."""

    seq: int
    kind: str  # "edit" or "delete"
    message_id: str
    message_seq: int
    parties: frozenset[str] | None  # a DM's sender and recipient; None: a room message
    content: str | None  # what an edit set

    def key(self) -> tuple[Any, ...]:
        if self.kind == "edit":
            return ("edited", self.message_id, self.content)
        return ("deleted", self.message_id)


class Servers:
    """The server the runs talk to; replaced by a fresh one when the room grows so long that
    listing it on every step would dominate the run."""

    def __init__(self, start: Callable[..., LiveServer]) -> None:
        self.start = start
        self.current = start()
        self.started = 1
        # Every edit and delete made on the current server, by every run: a resume replays
        # those of earlier runs too.
        self.events: list[ChangeEvent] = []

    def fresh_if_longer_than(self, room_size: int, limit: int) -> LiveServer:
        if room_size > limit:
            old = self.current
            self.current = self.start()
            self.started += 1
            self.events = []
            old.proc.stop()
        return self.current


@dataclass
class Socket:
    client: WsClient
    extended: bool
    read_upto: int = 0  # index into client.seen: frames before it were checked
    last_seq: int = 0  # newest message seq delivered on it, for a resume


def _frame_key(frame: Frame) -> tuple[Any, ...] | None:
    """A pushed frame as the model describes it; ``None`` for what the model ignores."""
    if "request_id" in frame:
        return None  # a reply to our own request, checked where it was made
    if is_delivery(frame):
        return ("message", json.dumps(rendered(frame), sort_keys=True))
    kind = frame.get("type")
    if kind == "ping":
        return None  # the heartbeat
    if kind == "unread_count":
        return (
            "unread_count",
            frame["unread_room_messages"],
            frame["unread_direct_messages"],
            frame["total_unread"],
        )
    if kind == "read_receipt":
        return ("read_receipt", frame["message_id"], frame["read_by"])
    if kind == "presence":
        return ("presence", frame["user_id"], frame["username"], frame["online"])
    if kind == "resumed":
        return ("resumed", frame["since_seq"], frame["replayed"])
    if kind == "user_updated":
        return ("user_updated", frame["user_id"], frame["username"])
    if kind == "message_edited":
        return ("edited", frame["message"]["id"], frame["message"]["content"])
    if kind == "message_deleted":
        return ("deleted", frame["message_id"])
    if kind == "read_up_to":
        return (
            "read_up_to",
            frame["read_by"],
            frame["scope"],
            frame["up_to_seq"],
            frame["last_message_id"],
            frame["count"],
        )
    return ("unexpected", json.dumps(frame, sort_keys=True))


class ChatMachine(RuleBasedStateMachine):
    def __init__(self, servers: Servers, stats: Stats) -> None:
        super().__init__()
        self.servers = servers
        self.stats = stats
        stats.runs += 1
        self.loop = asyncio.Runner()
        self.model = Model()
        self.sockets: dict[str, Socket] = {}
        self.expected: dict[str, list[tuple[Any, ...]]] = {}
        self.client_ids: dict[tuple[str, str], Message] = {}
        self.tag = uuid.uuid4().hex[:8]
        self.names = 0
        # A few connections: the pool costs client CPU per connection and request.
        self.http = httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_connections=4))
        self.server = servers.current
        self._last_seen: dict[str, int] = {}
        self.online: list[str] = []  # user ids, in the order they came online

    # ---- plumbing --------------------------------------------------------------------------

    def run(self, coro: Any) -> Any:
        return self.loop.run(asyncio.wait_for(coro, 60))

    def teardown(self) -> None:
        async def close() -> None:
            for sock in self.sockets.values():
                await sock.client.close()
            await self.http.aclose()

        try:
            self.run(close())
        finally:
            self.loop.close()

    def fresh_name(self) -> str:
        self.names += 1
        return f"m{self.tag}-{self.names}"

    async def call(
        self, method: str, path: str, user: User | None = None, key: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {}
        if user is not None or key is not None:
            headers["X-API-Key"] = key or (user.key if user else "")
        return await self.http.request(method, self.server.http_url + path, headers=headers, **kw)

    async def ok(self, method: str, path: str, user: User, status: int = 200, **kw: Any) -> Any:
        resp = await self.call(method, path, user, **kw)
        assert resp.status_code == status, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    async def refused(
        self, method: str, path: str, user: User, status: int, code: str, **kw: Any
    ) -> None:
        resp = await self.call(method, path, user, **kw)
        assert (resp.status_code, resp.json().get("code")) == (status, code), (
            method,
            path,
            resp.text,
        )

    async def all_pages(self, path: str, user: User) -> list[Frame]:
        """Every item of a listing, page by page (paginated or plain list responses)."""
        items: list[Frame] = []
        while True:
            sep = "&" if "?" in path else "?"
            body = await self.ok("GET", f"{path}{sep}limit={PAGE}&offset={len(items)}", user)
            page = body["messages"] if isinstance(body, dict) else body
            items += page
            if len(page) < PAGE:
                if isinstance(body, dict):
                    assert body["pagination"]["total"] == len(items), (path, body["pagination"])
                    assert body["pagination"]["has_more"] is False, (path, body["pagination"])
                return items

    async def connect(self, user: User, extended: bool, since_seq: int | None = None) -> None:
        query = f"?api_key={user.key}"
        if extended:
            query += "&protocol_version=1.1"
        if since_seq is not None:
            query += f"&since_seq={since_seq}"
        client = WsClient(await websockets.connect(self.server.ws_url + query))
        sock = Socket(client, extended, last_seq=since_seq or 0)
        if extended:
            hello = await client.recv_until(lambda f: f.get("type") == "hello", TIMEOUT)
            assert (hello["user_id"], hello["username"]) == (user.id, user.name), hello
            assert hello["last_seq"] is None if since_seq is not None else True, hello
            sock.read_upto = len(client.seen)
            if since_seq is None:
                sock.last_seq = hello["last_seq"]
        else:
            # No hello: a reply shows the server has registered the connection (and sent any
            # replay, which comes before it).
            await client.request({"type": "ping"}, TIMEOUT)
            if since_seq is None:
                sock.last_seq = max((m.seq for m in self.model.messages), default=0)
        self._last_seen[user.id] = sock.last_seq
        for other in self.everyone:
            if other.id in self.sockets and self.sockets[other.id].extended:
                self.expect(other.id, ("presence", user.id, user.name, True))
        self.sockets[user.id] = sock
        self.expected[user.id] = []
        self.online.append(user.id)

    async def went_offline(self, user: User) -> None:
        """Wait until the server has seen the socket go (it then tells the others)."""
        self.online.remove(user.id)

        async def gone() -> bool:
            listed = await self.ok("GET", "/users/online", self.viewer)
            return user.id not in {u["id"] for u in listed}

        async with asyncio.timeout(TIMEOUT):
            while not await gone():
                await asyncio.sleep(0.02)
        for other in self.everyone:
            if other.id in self.sockets and self.sockets[other.id].extended:
                self.expect(other.id, ("presence", user.id, user.name, False))

    async def ws_request(self, user: User, frame: Frame) -> Frame:
        return await self.sockets[user.id].client.request(frame, TIMEOUT)

    # ---- what the model expects on the sockets ---------------------------------------------

    def expect(self, user_id: str, key: tuple[Any, ...]) -> None:
        if user_id in self.sockets:
            self.expected[user_id].append(key)

    def stored(self, message: Message) -> None:
        self.model.add_message(message)
        frame = json.dumps(self.model.render(message), sort_keys=True)
        for user_id in self.model.delivered_to(message):
            self.expect(user_id, ("message", frame))

    def marked(
        self, reader: User, marked: Marked, scope: str | None, exact_counts: bool = True
    ) -> None:
        """The pushes a mark causes: receipts to authors, the reader's new counts (when sends
        raced the mark, which of them the pushed counts include is not known: any will do)."""
        if not marked.changed:
            return
        by_author: dict[str, list[Message]] = {}
        for message in marked.counted:
            if message.sender_id != reader.id:
                by_author.setdefault(message.sender_id, []).append(message)
        for author_id, items in by_author.items():
            sock = self.sockets.get(author_id)
            if sock is None:
                continue
            if scope is None:  # a single mark: one receipt, any dialect
                self.expect(author_id, ("read_receipt", items[0].id, reader.name))
            elif sock.extended:
                last = items[-1]
                self.expect(
                    author_id, ("read_up_to", reader.name, scope, last.seq, last.id, len(items))
                )
            else:
                for m in items[-LEGACY_RECEIPTS_PER_AUTHOR:]:
                    self.expect(author_id, ("read_receipt", m.id, reader.name))
        sock = self.sockets.get(reader.id)
        if sock is not None and sock.extended:
            counts = self.model.counts(reader.id)
            if not exact_counts:
                self.expect(reader.id, ANY_COUNTS)
                return
            self.expect(
                reader.id,
                (
                    "unread_count",
                    counts["unread_room_messages"],
                    counts["unread_direct_messages"],
                    counts["total_unread"],
                ),
            )

    # ---- setup -----------------------------------------------------------------------------

    @initialize(
        members=st.integers(3, 4),
        extended=st.lists(st.booleans(), min_size=5, max_size=5),
    )
    def setup(self, members: int, extended: list[bool]) -> None:
        self.stats.steps += 1
        self.run(self._setup(members, extended))

    async def _setup(self, members: int, extended: list[bool]) -> None:
        probe = await self.http.get(f"{self.server.http_url}/messages?limit=1")
        assert probe.status_code == 401
        for i in range(members + 1):
            viewer = i == members
            body: dict[str, Any] = {"username": self.fresh_name()}
            if viewer:
                body["role"] = "viewer"
            resp = await self.call("POST", "/register", json=body)
            assert resp.status_code == 201, resp.text
            reg = resp.json()
            user = User(reg["id"], reg["username"], reg["api_key"], viewer=viewer)
            self.model.add_user(user)
            if i == 0:
                size = (await self.ok("GET", "/messages?limit=1", user))["pagination"]["total"]
                server = self.servers.fresh_if_longer_than(size, ROOM_LIMIT)
                if server is not self.server:
                    self.server = server
                    self.model = Model()
                    self.names = 0
                    await self._setup(members, extended)
                    return
        first = next(iter(self.model.users.values()))
        # The room as earlier runs left it: every one of those messages starts unread.
        for frame in reversed(await self.all_pages("/messages", first)):
            self.model.add_message(
                Message(
                    frame["id"],
                    frame["seq"],
                    frame["from_user_id"],
                    frame["from_username"],
                    None,
                    frame["content"],
                )
            )
        for user, ext in zip(self.model.users.values(), extended, strict=False):
            await self.connect(user, ext)

    # ---- helpers for rules -----------------------------------------------------------------

    @property
    def members(self) -> list[User]:
        return [u for u in self.model.users.values() if not u.viewer]

    @property
    def everyone(self) -> list[User]:
        return list(self.model.users.values())

    @property
    def viewer(self) -> User:
        return next(u for u in self.model.users.values() if u.viewer)

    def step(self, name: str) -> None:
        self.stats.steps += 1
        self.stats.rules[name] += 1

    def via_ws(self, data: st.DataObject, user: User) -> bool:
        return user.id in self.sockets and data.draw(st.booleans(), label="via WebSocket")

    def recipient_name(self, data: st.DataObject, sender: User) -> str:
        """A DM target: anyone (oneself, the viewer), an old name, or nobody at all."""
        choices = [u.name for u in self.everyone] + [sender.name]
        choices += [n for u in self.everyone for n in u.old_names]
        choices.append(f"nobody-{self.tag}")
        return pick(data, choices, "to")

    async def send_one(
        self,
        sender: User,
        content: str,
        to: str | None,
        client_id: str | None,
        ws: bool,
    ) -> None:
        """One send, checked against the model: stored, a retry, or refused."""
        recipient = self.model.by_name(to) if to is not None else None
        refusal: tuple[int, str] | None = None
        if sender.viewer:
            refusal = (403, "permission_denied")
        elif to is not None and recipient is None:
            refusal = (404, "user_not_found")
        elif recipient is not None and recipient.viewer:
            refusal = (400, "recipient_is_viewer")
        body: dict[str, Any] = {"content": content}
        if to is not None:
            body["to_username"] = to
        if client_id is not None:
            body["client_message_id"] = client_id
        if ws:
            reply = await self.ws_request(sender, {"type": "message", **body})
            if refusal is not None:
                assert (reply["type"], reply["code"]) == ("error", refusal[1]), reply
                return
            assert reply["type"] == "message_sent", reply
            got = reply["message"]
        else:
            if refusal is not None:
                await self.refused("POST", "/messages", sender, *refusal, json=body)
                return
            got = await self.ok("POST", "/messages", sender, 201, json=body)
        earlier = self.client_ids.get((sender.id, client_id)) if client_id else None
        if earlier is not None:
            # The first send as it is now: edited, or emptied once deleted.
            first = self.model.render(earlier) | ({"content": ""} if earlier.deleted else {})
            assert rendered(got) == first, "a retry returns the first send"
            return
        message = Message(
            got["id"],
            got["seq"],
            sender.id,
            sender.name,
            recipient.id if recipient else None,
            content,
        )
        assert all(m.id != message.id and m.seq != message.seq for m in self.model.messages)
        if client_id is not None:
            self.client_ids[(sender.id, client_id)] = message
        self.stored(message)
        assert rendered(got) == self.model.render(message)

    # ---- rules: sending --------------------------------------------------------------------

    def send_room(self, data: st.DataObject) -> None:
        content, client_id = data.draw(TEXT, label="content"), data.draw(CLIENT_ID, label="cid")
        sender = pick(data, self.members, "sender")
        self.run(self.send_one(sender, content, None, client_id, self.via_ws(data, sender)))

    def send_direct(self, data: st.DataObject) -> None:
        content, client_id = data.draw(TEXT, label="content"), data.draw(CLIENT_ID, label="cid")
        sender = pick(data, self.members, "sender")
        to = self.recipient_name(data, sender)
        self.run(self.send_one(sender, content, to, client_id, self.via_ws(data, sender)))

    def viewer_sends(self, data: st.DataObject) -> None:
        content = data.draw(TEXT, label="content")
        to = pick(data, [None, *(u.name for u in self.members)], "to")
        self.run(self.send_one(self.viewer, content, to, None, self.via_ws(data, self.viewer)))

    def concurrent_sends(self, data: st.DataObject) -> None:
        """Several sends at once (REST and WebSocket mixed, a member may send more than one):
        the server commits them in one or more batches, and every socket must still see them
        in ``seq`` order."""
        picks = data.draw(st.lists(INDEX, min_size=2, max_size=4), label="senders")
        senders = [self.members[i % len(self.members)] for i in picks]
        sends = []
        on_socket: set[str] = set()  # one request at a time per socket
        for sender in senders:
            to = pick(data, [None, *(u.name for u in self.members)], "to")
            ws = sender.id not in on_socket and self.via_ws(data, sender)
            if ws:
                on_socket.add(sender.id)
            sends.append((sender, data.draw(TEXT, label="content"), to, ws))

        async def together() -> None:
            results: list[Frame] = await asyncio.gather(
                *(self.raw_send(s, c, to, ws) for s, c, to, ws in sends)
            )
            # Applied to the model in seq order, as the server delivered them.
            for (sender, content, to, _), got in sorted(
                zip(sends, results, strict=True), key=lambda pair: pair[1]["seq"]
            ):
                recipient = self.model.by_name(to) if to else None
                message = Message(
                    got["id"],
                    got["seq"],
                    sender.id,
                    sender.name,
                    recipient.id if recipient else None,
                    content,
                )
                self.stored(message)
                assert rendered(got) == self.model.render(message)

        self.run(together())

    def mark_racing_sends(self, data: st.DataObject) -> None:
        """A bulk mark while others send: the mark may or may not take in each racing message,
        but it must take every message that was unread before it, count exactly what it took,
        and take them as a prefix in ``seq`` order (the server's read cursor); the lists and
        counts checked after the step then pin down which."""
        reader = pick(data, self.everyone, "reader")
        others = [u for u in self.members if u is not reader]
        scope = "room" if reader.id in self.sockets and data.draw(st.booleans()) else "all"
        ws = scope == "room" or self.via_ws(data, reader)
        picks = data.draw(st.lists(INDEX, min_size=1, max_size=3), label="senders")
        sends = []
        on_socket: set[str] = set()
        for i in picks:
            sender = others[i % len(others)]
            to = pick(data, [None, reader.name, *(u.name for u in others)], "to")
            via = sender.id not in on_socket and self.via_ws(data, sender)
            if via:
                on_socket.add(sender.id)
            sends.append((sender, data.draw(TEXT, label="content"), to, via))
        if reader.viewer:
            sends = [(s, c, None if to == reader.name else to, w) for s, c, to, w in sends]

        def unread() -> list[Message]:
            room = self.model.unread_room(reader.id)
            return room if scope == "room" else self.model.unread_direct(reader.id) + room

        before = {x.id for x in unread()}
        earlier = [x for x in self.model.live() if self.model.visible(reader.id, x)]

        async def mark() -> int:
            if scope == "room":
                reply = await self.ws_request(reader, {"type": "mark_room_read"})
                return int(reply["count"])
            if ws:
                reply = await self.ws_request(reader, {"type": "mark_all_read"})
                return int(reply["marked_as_read"])
            body = await self.ok("POST", "/messages/mark-all-read", reader)
            return int(body["marked_as_read"])

        async def race() -> tuple[int, list[Frame]]:
            count, *results = await asyncio.gather(
                mark(), *(self.raw_send(s, c, to, w) for s, c, to, w in sends)
            )
            return count, results

        count, results = self.run(race())
        for (sender, content, to, _), got in sorted(
            zip(sends, results, strict=True), key=lambda pair: pair[1]["seq"]
        ):
            recipient = self.model.by_name(to) if to else None
            self.stored(
                Message(
                    got["id"],
                    got["seq"],
                    sender.id,
                    sender.name,
                    recipient.id if recipient else None,
                    content,
                )
            )
        candidates = sorted(unread(), key=lambda x: x.seq)
        assert len(before) <= count <= len(candidates), (count, len(before), len(candidates))
        taken = candidates[:count]
        assert before <= {x.id for x in taken}, "a bulk mark must take everything unread before it"
        if scope == "room":
            earlier = [x for x in earlier if x.is_room]
        self.model.read |= {(reader.id, x.id) for x in earlier + taken}
        self.marked(reader, Marked(taken, changed=bool(taken)), scope, exact_counts=False)

    async def raw_send(self, sender: User, content: str, to: str | None, ws: bool) -> Frame:
        body: dict[str, Any] = {"content": content}
        if to is not None:
            body["to_username"] = to
        if ws:
            reply = await self.ws_request(sender, {"type": "message", **body})
            assert reply["type"] == "message_sent", reply
            return dict(reply["message"])
        return dict(await self.ok("POST", "/messages", sender, 201, json=body))

    # ---- rules: marking --------------------------------------------------------------------

    def message_id(self, data: st.DataObject) -> str:
        """Any stored message (visible to the reader or not), or an id nothing has."""
        ids = [m.id for m in self.model.live()[-40:]]
        nothing = [NO_SUCH_MESSAGE, "not-a-message"]
        if ids:
            nothing.append(ids[-1].upper())  # ids match exactly their stored form
        return pick(data, ids + nothing, "message id")

    def mark_one(self, data: st.DataObject) -> None:
        reader = pick(data, self.everyone, "reader")
        message_id = self.message_id(data)
        ws = self.via_ws(data, reader)
        message = self.model.by_id(message_id)
        visible = message is not None and self.model.visible(reader.id, message)

        async def mark() -> None:
            if ws:
                reply = await self.ws_request(
                    reader, {"type": "mark_read", "message_id": message_id}
                )
                if visible:
                    assert reply["type"] == "marked_read", reply
                    assert reply["message_id"] == message_id
                else:
                    assert (reply["type"], reply["code"]) == ("error", "message_not_found")
            elif visible:
                await self.ok("POST", f"/messages/{message_id}/read", reader, 204)
            else:
                await self.refused(
                    "POST", f"/messages/{message_id}/read", reader, 404, "message_not_found"
                )

        self.run(mark())
        if visible:
            assert message is not None
            self.marked(reader, self.model.mark_one(reader.id, message), None)

    def mark_all(self, data: st.DataObject) -> None:
        reader = pick(data, self.everyone, "reader")
        ws = self.via_ws(data, reader)

        async def mark() -> int:
            if ws:
                reply = await self.ws_request(reader, {"type": "mark_all_read"})
                assert reply["type"] == "marked_all_read", reply
                return int(reply["marked_as_read"])
            return int((await self.ok("POST", "/messages/mark-all-read", reader))["marked_as_read"])

        count = self.run(mark())
        marked = self.model.mark_all(reader.id)
        assert count == len(marked.counted)
        self.marked(reader, marked, "all")

    def mark_room(self, data: st.DataObject) -> None:
        readers = [u for u in self.everyone if u.id in self.sockets]
        if not readers:
            return
        reader = pick(data, readers, "reader")
        reply = self.run(self.ws_request(reader, {"type": "mark_room_read"}))
        marked = self.model.mark_room(reader.id)
        assert (reply.get("status"), reply.get("count")) == ("marked_read", len(marked.counted))
        self.marked(reader, marked, "room")

    def mark_direct(self, data: st.DataObject) -> None:
        readers = [u for u in self.everyone if u.id in self.sockets]
        if not readers:
            return
        reader = pick(data, readers, "reader")
        name = self.recipient_name(data, reader)
        sender = self.model.by_name(name)
        reply = self.run(
            self.ws_request(reader, {"type": "mark_direct_read", "from_username": name})
        )
        if sender is None:
            assert (reply.get("type"), reply.get("code")) == ("error", "user_not_found"), reply
            return
        marked = self.model.mark_direct(reader.id, sender.id)
        assert (reply.get("from_username"), reply.get("count")) == (name, len(marked.counted))
        self.marked(reader, marked, "direct")

    # ---- rules: accounts -------------------------------------------------------------------

    def rename(self, data: st.DataObject) -> None:
        """To a new name, to one that is taken (one's own included), or to a name someone
        gave up; a viewer may not rename at all."""
        tail = data.draw(NAME_TAIL, label="tail")
        user = pick(data, self.everyone, "user")
        freed = [n for u in self.everyone for n in u.old_names if not self.model.taken(n)]
        new = pick(
            data, [self.fresh_name() + tail, *(u.name for u in self.everyone), *freed], "new name"
        )
        body = {"username": new}
        if user.viewer:
            self.run(
                self.refused(
                    "PATCH", "/users/me/username", user, 403, "permission_denied", json=body
                )
            )
            return
        if self.model.taken(new):
            self.run(
                self.refused("PATCH", "/users/me/username", user, 409, "username_taken", json=body)
            )
            return
        profile = self.run(self.ok("PATCH", "/users/me/username", user, json=body))
        assert (profile["id"], profile["username"]) == (user.id, new)
        self.run(self.until_every_node(user.key, lambda resp: resp.json()["username"] == new))
        user.old_names.append(user.name)
        user.name = new
        # Every extended socket hears of it (the user's own too: they may be another tab).
        for other in self.everyone:
            sock = self.sockets.get(other.id)
            if sock is not None and sock.extended:
                self.expect(other.id, ("user_updated", user.id, new))

    def rotate_key(self, data: st.DataObject) -> None:
        """The old key stops at once: 401 on REST, refused at the WebSocket handshake, and an
        open socket of the user is closed with 1008. The user comes back with the new key."""
        user = pick(data, self.everyone, "user")

        async def rotate() -> None:
            body = await self.ok("POST", "/users/me/regenerate-api-key", user)
            old, user.key = user.key, body["api_key"]
            user.old_keys.append(old)
            await self.until_every_node(old, lambda resp: resp.status_code == 401)
            resp = await self.call("GET", "/users/me", key=old)
            assert resp.status_code == 401, resp.text
            me = await self.ok("GET", "/users/me", user)
            assert (me["id"], me["username"]) == (user.id, user.name)
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(f"{self.server.ws_url}?api_key={old}")
            assert refused.value.response.status_code == 401
            sock = self.sockets.pop(user.id, None)
            if sock is not None:
                await self.expect_closed(user, sock, 1008)
                await self.went_offline(user)

        self.run(rotate())

    async def until_every_node(self, key: str, agrees: Callable[[httpx.Response], bool]) -> None:
        """On one node an account change holds at once; another node hears of it through
        Redis a moment later (and forgets cached accounts within a second if that message is
        lost): wait, bounded, until ``GET /users/me`` with ``key`` agrees on every node."""
        if len(self.server.nodes) < 2:
            return
        async with asyncio.timeout(5):
            for node in self.server.nodes:
                while not agrees(
                    await self.http.get(f"{node.http_url}/users/me", headers={"X-API-Key": key})
                ):
                    await asyncio.sleep(0.01)

    async def expect_closed(self, user: User, sock: Socket, code: int) -> None:
        """The socket closes with ``code``; every frame before the close must be expected."""
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await sock.client.recv(TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code, closed.value
        self.check_frames(user, sock, self.expected.pop(user.id))

    def disconnect(self, data: st.DataObject) -> None:
        connected = [u for u in self.everyone if u.id in self.sockets]
        if not connected:
            return
        user = pick(data, connected, "user")
        sock = self.sockets.pop(user.id)
        self.run(self.barrier(user, sock))
        self.expected.pop(user.id)
        self.run(sock.client.close())
        self.run(self.went_offline(user))

    def reconnect(self, data: st.DataObject) -> None:
        """Back online, resuming from the last message seen (an extended socket then gets the
        missed messages replayed and ``resumed``) or afresh."""
        away = [u for u in self.everyone if u.id not in self.sockets]
        if not away:
            return
        extended = data.draw(st.booleans(), label="extended")
        resume = data.draw(st.booleans(), label="resume")
        user = pick(data, away, "user")
        since = self.last_seen.get(user.id, 0) if resume else None

        async def back() -> None:
            await self.connect(user, extended, since)
            if since is None:
                return
            missed = [
                m
                for m in self.model.live()
                if m.seq > since and user.id in self.model.delivered_to(m)
            ]
            sock = self.sockets[user.id]
            for m in missed:
                self.expect(user.id, ("message", json.dumps(self.model.render(m), sort_keys=True)))
            changes = self.replayed_changes(user, since) if extended else []
            for change in changes:
                self.expect(user.id, change.key())
            if extended:
                self.expect(user.id, ("resumed", since, len(missed) + len(changes)))
            await self.barrier(user, sock)

        self.run(back())

    def get_message(self, data: st.DataObject) -> None:
        """``GET /messages/{id}``: what the reader may see, rendered with today's names."""
        reader = pick(data, self.everyone, "reader")
        message_id = self.message_id(data)
        message = self.model.by_id(message_id)
        if message is None or not self.model.visible(reader.id, message):
            self.run(
                self.refused("GET", f"/messages/{message_id}", reader, 404, "message_not_found")
            )
            return
        got = self.run(self.ok("GET", f"/messages/{message_id}", reader))
        assert rendered(got) == self.model.render(message)

    # ---- the rules: few, so that hypothesis' swarm testing (each run enables a random subset
    # of the rules) cannot leave whole features out of a short CI run ----------------------

    @rule(data=st.data(), kind=st.sampled_from(["room", "direct", "viewer_sends", "concurrent"]))
    def send(self, data: st.DataObject, kind: str) -> None:
        """A room message or a DM (REST or WebSocket; to oneself, to a viewer, to an old name
        or nobody; sometimes a retry of an earlier client message id), a viewer's refused
        send, or several members sending at once."""
        self.step(f"send {kind}")
        {
            "room": self.send_room,
            "direct": self.send_direct,
            "viewer_sends": self.viewer_sends,
            "concurrent": self.concurrent_sends,
        }[kind](data)

    @rule(data=st.data(), kind=st.sampled_from(["one", "all", "room", "direct", "racing"]))
    def mark(self, data: st.DataObject, kind: str) -> None:
        """``mark_read`` / ``POST /messages/{id}/read`` of any id, ``mark_all_read`` /
        ``POST /messages/mark-all-read``, ``mark_room_read``, ``mark_direct_read``, and a
        bulk mark racing other users' sends."""
        self.step(f"mark {kind}")
        {
            "one": self.mark_one,
            "all": self.mark_all,
            "room": self.mark_room,
            "direct": self.mark_direct,
            "racing": self.mark_racing_sends,
        }[kind](data)

    @rule(
        data=st.data(),
        kind=st.sampled_from(
            # The first is what hypothesis draws most: the cheapest goes there.
            ["get_message", "rename", "rotate_key", "disconnect", "reconnect", "ws_reads"]
        ),
    )
    def account(self, data: st.DataObject, kind: str) -> None:
        """Renames, key rotations, sockets going and coming back, and reading one message."""
        self.step(kind)
        {
            "rename": self.rename,
            "rotate_key": self.rotate_key,
            "disconnect": self.disconnect,
            "reconnect": self.reconnect,
            "get_message": self.get_message,
            "ws_reads": self.ws_reads,
        }[kind](data)

    def ws_reads(self, data: st.DataObject) -> None:
        """The WebSocket's read commands answer what REST does (the model's answer)."""
        connected = [u for u in self.everyone if u.id in self.sockets]
        if not connected:
            return
        user = pick(data, connected, "user")

        async def ask() -> None:
            counts = await self.ws_request(user, {"type": "get_unread_count"})
            assert {k: counts[k] for k in self.model.counts(user.id)} == self.model.counts(
                user.id
            ), counts
            for kind, want in [
                ("get_unread_messages", self.model.unread_room(user.id)),
                ("get_unread_direct_messages", self.model.unread_direct(user.id)),
                ("get_messages", self.model.room_history()[::-1]),
                ("get_direct_messages", self.model.direct_history(user.id)[::-1]),
            ]:
                reply = await self.ws_request(user, {"type": kind, "limit": PAGE})
                got = [rendered(f) for f in reply["messages"]]
                assert got == [self.model.render(x) for x in want[:PAGE]], (user.name, kind)

        self.run(ask())

    @rule(data=st.data(), kind=st.sampled_from(["edit", "delete"]))
    def change(self, data: st.DataObject, kind: str) -> None:
        """An edit or a delete, over REST or the WebSocket, of any recent message (deleted
        ones too) by a user with an extended socket: the author's is done and pushed to every
        extended socket that can see the message; anyone else's, or a deleted one, is
        refused and changes nothing."""
        self.step(kind)
        actors = [u for u in self.everyone if u.id in self.sockets and self.sockets[u.id].extended]
        recent = self.model.messages[-40:]
        actor_index = data.draw(INDEX, label="actor")  # drawn whatever the lists hold
        message_index = data.draw(INDEX, label="message")
        ws = data.draw(st.booleans(), label="via WebSocket")
        content = data.draw(TEXT, label="content")
        if not actors or not recent:
            return
        actor, message = actors[actor_index % len(actors)], recent[message_index % len(recent)]
        note(f"{kind} by {actor!r} of {message!r} via {'ws' if ws else 'rest'}")
        refusal = None
        if not self.model.visible(actor.id, message):
            refusal = (404, "message_not_found")
        elif message.deleted:
            refusal = (404, "message_deleted")
        elif message.sender_id != actor.id:
            refusal = (403, "permission_denied")
        seq = self.run(self.do_change(actor, message, kind, content, ws, refusal))
        if refusal is not None:
            return
        if kind == "edit":
            message.content = content
        else:
            message.deleted = True
        parties = None if message.is_room else frozenset({message.sender_id, message.recipient_id})
        event = ChangeEvent(
            seq, kind, message.id, message.seq, parties, content if kind == "edit" else None
        )
        self.servers.events.append(event)
        for user in self.everyone:
            sock = self.sockets.get(user.id)
            if sock is not None and sock.extended and self.model.visible(user.id, message):
                self.expect(user.id, event.key())

    async def do_change(
        self,
        actor: User,
        message: Message,
        kind: str,
        content: str,
        ws: bool,
        refusal: tuple[int, str] | None,
    ) -> int:
        """Make the change; returns its seq (0 when refused)."""
        path = f"/messages/{message.id}"
        edit = kind == "edit"
        push = "message_edited" if edit else "message_deleted"
        if ws:
            frame: Frame = {"type": f"{kind}_message", "message_id": message.id}
            if edit:
                frame["content"] = content
            reply = await self.ws_request(actor, frame)
            if refusal is not None:
                assert (reply["type"], reply["code"]) == ("error", refusal[1]), reply
                return 0
            assert reply["type"] == push, reply
            return int(reply["seq"])
        body = {"json": {"content": content}} if edit else {}
        method = "PATCH" if edit else "DELETE"
        if refusal is not None:
            await self.refused(method, path, actor, *refusal, **body)
            return 0
        got = await self.ok(method, path, actor, 200 if edit else 204, **body)
        if edit:
            assert (got["id"], got["content"]) == (message.id, content), got

        def pushed(frame: Frame) -> bool:
            if frame.get("type") != push or "request_id" in frame:
                return False
            found = frame["message"]["id"] if edit else frame["message_id"]
            return bool(found == message.id)

        # The author can see it: their own extended socket hears it, with the change's seq.
        return int((await self.sockets[actor.id].client.recv_until(pushed, TIMEOUT))["seq"])

    def replayed_changes(self, user: User, since: int) -> list[ChangeEvent]:
        """What a resume from ``since`` replays besides messages: edits of messages the user
        can see and that are not deleted now, and deletes of ones from before ``since``."""
        live = {m.id for m in self.model.live()}
        return [
            event
            for event in self.servers.events
            if event.seq > since
            and (event.parties is None or user.id in event.parties)
            and (event.message_seq <= since if event.kind == "delete" else event.message_id in live)
        ]

    # ---- invariants ------------------------------------------------------------------------

    @property
    def last_seen(self) -> dict[str, int]:
        return self._last_seen

    @invariant()
    def everything_matches_the_model(self) -> None:
        if not self.model.users:
            return
        started = time.monotonic()
        self.run(self._check_all())
        self.stats.checking += time.monotonic() - started

    async def _check_all(self) -> None:
        """Every question at once: each is independent of the others."""
        users = self.everyone
        checks = [self._check_room(users[0]), self._check_online(users[0])]
        for user in users:
            checks += [
                self._check_counts(user),
                self._check_list(user, "/messages/unread", self.model.unread_room(user.id)),
                self._check_list(
                    user, "/messages/direct/unread", self.model.unread_direct(user.id)
                ),
                self._check_list(
                    user, "/messages/direct", self.model.direct_history(user.id)[::-1]
                ),
            ]
            sock = self.sockets.get(user.id)
            if sock is not None:
                checks.append(self.barrier(user, sock))
        await asyncio.gather(*checks)

    async def _check_room(self, user: User) -> None:
        history = await self.all_pages("/messages", user)
        want = [self.model.render(m) for m in reversed(self.model.room_history())]
        assert [rendered(f) for f in history] == want, "room history, newest first"

    async def _check_online(self, user: User) -> None:
        listed = await self.ok("GET", "/users/online", user)
        online = [u["id"] for u in listed if u["id"] in self.model.users]
        assert online == self.online, "online users, in the order they came online"

    async def _check_counts(self, user: User) -> None:
        counts = await self.ok("GET", "/messages/unread/count", user)
        assert counts == self.model.counts(user.id), (user.name, counts)

    async def _check_list(self, user: User, path: str, want: list[Message]) -> None:
        """A listing in the order the model gives (unread: oldest first; history: newest)."""
        got = await self.all_pages(path, user)
        assert [rendered(f) for f in got] == [self.model.render(m) for m in want], (
            user.name,
            path,
        )

    async def barrier(self, user: User, sock: Socket) -> None:
        """Everything the server queued for this socket before now has arrived (a ping's reply
        comes after it): check it against what the model expected, then start afresh.

        On several nodes whatever an action through another node pushes (a message, a
        receipt, a presence change, a count) reaches this socket's node through Redis, which
        the ping does not wait for: first wait (bounded) until every frame the model expects
        has come; one too many still fails the check, and so does one that never comes."""
        expected = self.expected[user.id]
        if len(self.server.nodes) > 1:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TIMEOUT):
                    while Counter(expected) - self._comparable(self._pushed(sock), expected):
                        await sock.client.recv(TIMEOUT)
        await sock.client.request({"type": "ping"}, TIMEOUT)
        self.check_frames(user, sock, expected)
        self.expected[user.id] = []

    def _pushed(self, sock: Socket) -> list[tuple[Any, ...]]:
        """The model's keys of what this socket was pushed since its last check."""
        frames = sock.client.seen[sock.read_upto :]
        got = [key for key in map(_frame_key, frames) if key is not None]
        # Users of earlier runs may still be leaving: their presence is not this run's.
        return [k for k in got if k[0] != "presence" or k[1] in self.model.users]

    @staticmethod
    def _comparable(
        got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]
    ) -> Counter[tuple[Any, ...]]:
        """``got`` as a multiset, every count frame standing for any count where the model
        expects some without knowing which."""
        if ANY_COUNTS in expected:
            return Counter(ANY_COUNTS if k[0] == "unread_count" else k for k in got)
        return Counter(got)

    def check_frames(self, user: User, sock: Socket, expected: list[tuple[Any, ...]]) -> None:
        got = self._pushed(sock)
        for frame in sock.client.seen[sock.read_upto :]:
            if is_delivery(frame) and "request_id" not in frame:
                sock.last_seq = max(sock.last_seq, frame["seq"])
                self._last_seen[user.id] = sock.last_seq
        sock.read_upto = len(sock.client.seen)
        deliveries = [k for k in got if k[0] == "message"]
        want_deliveries = [k for k in expected if k[0] == "message"]
        assert deliveries == want_deliveries, (user.name, "deliveries, in seq order")
        others = self._comparable([k for k in got if k[0] != "message"], expected)
        want_others = Counter(k for k in expected if k[0] != "message")
        assert others == want_others, (user.name, "receipts and pushed counts")


def test_the_server_agrees_with_the_model(make_server: Callable[..., LiveServer]) -> None:
    profile = os.environ.get("TOKEN_BOWL_MODEL", "ci")
    servers = Servers(make_server)
    stats = Stats()
    run_state_machine_as_test(
        lambda: ChatMachine(servers, stats),
        settings=settings(
            PROFILES[profile],
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(
        f"\nmodel check ({profile}): {stats.runs} runs, {stats.steps} steps, "
        f"{servers.started} server(s), {stats.checking:.1f} s checking; "
        f"steps by rule: {dict(sorted(stats.rules.items()))}"
    )
    for server in [servers.current]:
        assert "Traceback" not in server.proc.log(), server.proc.log()[-3000:]
