# mypy: ignore-errors
"""Drive a live server with the published ``token-bowl-chat==2.1.1`` client.

This script runs inside a separate virtual environment that has only the published
package installed (see ``test_upstream_client.py``). It must never import anything from
this repository. It records what the upstream client observed and prints one JSON object
on stdout, on a line starting with ``RESULT:``; the pytest side asserts on it.

Usage::

    python upstream_driver.py SCENARIO

with ``TB_HTTP_URL`` (``http://127.0.0.1:PORT``), ``TB_WS_URL`` (``ws://127.0.0.1:PORT``)
and ``TB_PREFIX`` (a prefix that makes usernames unique) in the environment.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import token_bowl_chat
from token_bowl_chat import (
    AsyncTokenBowlClient,
    AuthenticationError,
    TokenBowlClient,
    TokenBowlWebSocket,
)

HTTP_URL = os.environ["TB_HTTP_URL"]
WS_URL = os.environ["TB_WS_URL"]
PREFIX = os.environ["TB_PREFIX"]
WAIT = 5.0


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)


def msg_dict(msg: Any) -> dict[str, Any]:
    """The fields of an upstream ``MessageResponse`` that the tests look at."""
    return {
        "id": msg.id,
        "from_user_id": msg.from_user_id,
        "from_username": msg.from_username,
        "from_user_bot": msg.from_user_bot,
        "to_user_id": msg.to_user_id,
        "to_username": msg.to_username,
        "content": msg.content,
        "message_type": msg.message_type.value,
        "description": msg.description,
        "timestamp": msg.timestamp,
        "timestamp_parses": msg.timestamp_dt is not None,
    }


def count_dict(count: Any) -> dict[str, int]:
    return {
        "room": count.unread_room_messages,
        "direct": count.unread_direct_messages,
        "total": count.total_unread,
    }


class Rest:
    """The upstream *synchronous* ``TokenBowlClient``, called off the event loop."""

    def __init__(self, api_key: str | None) -> None:
        self.client = TokenBowlClient(api_key=api_key, base_url=HTTP_URL)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.client, name), *args, **kwargs)

    def close(self) -> None:
        self.client.close()


class Peer:
    """One registered user: a REST client plus an upstream WebSocket with recording callbacks."""

    def __init__(self, username: str, user_id: str, api_key: str) -> None:
        self.username = username
        self.id = user_id
        self.api_key = api_key
        self.rest = Rest(api_key)
        self.messages: list[dict[str, Any]] = []
        self.receipts: list[list[str]] = []
        self.counts: list[dict[str, int]] = []
        self.typing: list[list[str | None]] = []
        self.errors: list[str] = []
        self.connects = 0
        self.disconnects = 0
        self.ws = TokenBowlWebSocket(
            api_key=api_key,
            base_url=WS_URL,
            on_message=lambda m: self.messages.append(msg_dict(m)),
            on_read_receipt=lambda mid, by: self.receipts.append([mid, by]),
            on_unread_count=lambda c: self.counts.append(count_dict(c)),
            on_typing=lambda user, to: self.typing.append([user, to]),
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_error=lambda exc: self.errors.append(f"{type(exc).__name__}: {exc}"),
        )

    def _on_connect(self) -> None:
        self.connects += 1

    def _on_disconnect(self) -> None:
        self.disconnects += 1

    async def connect(self) -> None:
        await self.ws.connect()

    async def close(self) -> None:
        if self.ws.is_connected:
            await self.ws.disconnect()
        self.rest.close()

    async def ws_count(self) -> dict[str, int] | None:
        """Ask for the unread count over WS and wait for the matching ``on_unread_count``.

        The server answers frames of one connection in order, so this is also a barrier:
        everything this connection asked for before has been processed.
        """
        seen = len(self.counts)
        await self.ws.get_unread_count()
        if not await wait_until(lambda: len(self.counts) > seen):
            return None
        return self.counts[seen]

    async def rest_count(self) -> dict[str, int]:
        return count_dict(await self.rest.call("get_unread_count"))

    def got(self, content: str) -> dict[str, Any] | None:
        for msg in self.messages:
            if msg["content"] == content:
                return msg
        return None

    async def wait_message(self, content: str) -> dict[str, Any] | None:
        await wait_until(lambda: self.got(content) is not None)
        return self.got(content)

    def summary(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "id": self.id,
            "messages": self.messages,
            "receipts": self.receipts,
            "counts": self.counts,
            "typing": self.typing,
            "errors": self.errors,
            "connects": self.connects,
            "disconnects": self.disconnects,
        }


async def register(tag: str, out: dict[str, Any]) -> Peer:
    """Register through the upstream ``TokenBowlClient.register`` (no API key set)."""
    username = f"{PREFIX}_{tag}"
    anon = Rest(None)
    try:
        resp = await anon.call("register", username)
    finally:
        anon.close()
    out.setdefault("registrations", {})[tag] = {
        "id": resp.id,
        "username": resp.username,
        "api_key_len": len(resp.api_key),
        "role": resp.role.value,
        "viewer": resp.viewer,
        "admin": resp.admin,
        "bot": resp.bot,
    }
    return Peer(resp.username, resp.id, resp.api_key)


# --------------------------------------------------------------------------- scenarios


async def scenario_auth(out: dict[str, Any]) -> None:
    bad_key = "bad" * 22  # 66 characters: a plausible length, but no such key

    ws = TokenBowlWebSocket(api_key=bad_key, base_url=WS_URL)
    try:
        await ws.connect()
        out["ws_bad_key"] = {"raised": None, "connected": ws.is_connected}
        await ws.disconnect()
    except Exception as exc:
        out["ws_bad_key"] = {
            "raised": type(exc).__name__,
            "is_auth_error": isinstance(exc, AuthenticationError),
            "message": str(exc),
        }

    rest = Rest(bad_key)
    try:
        for method in ("get_unread_count", "get_messages", "get_users"):
            try:
                await rest.call(method)
                out[f"rest_bad_key_{method}"] = {"raised": None}
            except Exception as exc:
                out[f"rest_bad_key_{method}"] = {
                    "raised": type(exc).__name__,
                    "is_auth_error": isinstance(exc, AuthenticationError),
                    "status": getattr(getattr(exc, "response", None), "status_code", None),
                }
    finally:
        rest.close()

    async with AsyncTokenBowlClient(api_key=bad_key, base_url=HTTP_URL) as aclient:
        try:
            await aclient.send_message("should not be sent")
            out["async_rest_bad_key_send"] = {"raised": None}
        except Exception as exc:
            out["async_rest_bad_key_send"] = {
                "raised": type(exc).__name__,
                "is_auth_error": isinstance(exc, AuthenticationError),
                "status": getattr(getattr(exc, "response", None), "status_code", None),
            }

    # A good key still connects, so the failure above is about the key.
    peer = await register("authok", out)
    try:
        await peer.connect()
        out["ws_good_key_connected"] = peer.ws.is_connected
        out["ws_good_key_count"] = await peer.ws_count()
    finally:
        await peer.close()
    out["ws_good_key_peer"] = peer.summary()


async def scenario_messaging(out: dict[str, Any]) -> None:
    alice = await register("alice", out)
    bob = await register("bob", out)
    carol = await register("carol", out)
    peers = [alice, bob, carol]
    try:
        before = await alice.rest.call("get_messages", limit=1)
        out["room_total_before"] = before.pagination.total
        for peer in peers:
            await peer.connect()
        out["connected"] = [p.ws.is_connected for p in peers]

        # Presence while all three are connected.
        online = await alice.rest.call("get_online_users")
        out["online_all"] = [
            {"id": u.id, "username": u.username, "role": u.role.value} for u in online
        ]

        # Room message via REST (alice), then via WS (bob).
        sent = await alice.rest.call("send_message", f"{PREFIX} room-rest")
        out["rest_room_sent"] = msg_dict(sent)
        out["bob_room_rest"] = await bob.wait_message(f"{PREFIX} room-rest")
        out["carol_room_rest"] = await carol.wait_message(f"{PREFIX} room-rest")

        await bob.ws.send_message(f"{PREFIX} room-ws")
        out["alice_room_ws"] = await alice.wait_message(f"{PREFIX} room-ws")
        out["carol_room_ws"] = await carol.wait_message(f"{PREFIX} room-ws")

        # DM via REST (alice -> bob), then via WS (bob -> alice).
        sent_dm = await alice.rest.call(
            "send_message", f"{PREFIX} dm-rest", to_username=bob.username
        )
        out["rest_dm_sent"] = msg_dict(sent_dm)
        out["bob_dm_rest"] = await bob.wait_message(f"{PREFIX} dm-rest")

        await bob.ws.send_message(f"{PREFIX} dm-ws", to_username=alice.username)
        out["alice_dm_ws"] = await alice.wait_message(f"{PREFIX} dm-ws")

        # Typing: room typing from alice reaches bob and carol; DM typing from bob to
        # alice reaches alice only.
        await alice.ws.send_typing_indicator()
        out["bob_typing_room"] = await wait_until(lambda: len(bob.typing) >= 1)
        out["carol_typing_room"] = await wait_until(lambda: len(carol.typing) >= 1)
        await bob.ws.send_typing_indicator(to_username=alice.username)
        out["alice_typing_dm"] = await wait_until(lambda: len(alice.typing) >= 1)

        # Barrier: a later room message from bob reaches carol, so a DM typing relay to
        # carol (wrong) would have arrived before it.
        await bob.ws.send_message(f"{PREFIX} room-barrier")
        out["carol_barrier"] = await carol.wait_message(f"{PREFIX} room-barrier")
        out["alice_barrier"] = await alice.wait_message(f"{PREFIX} room-barrier")
        # Round trips on every connection: anything the server sent a user about their
        # own actions (echoes) has arrived by now.
        out["barrier_counts"] = [await p.ws_count() for p in peers]

        # REST history, newest first.
        page = await alice.rest.call("get_messages")
        out["history"] = {
            "total": page.pagination.total,
            "offset": page.pagination.offset,
            "limit": page.pagination.limit,
            "has_more": page.pagination.has_more,
            "messages": [msg_dict(m) for m in page.messages],
        }
        page1 = await alice.rest.call("get_messages", limit=1, offset=1)
        out["history_page1"] = {
            "total": page1.pagination.total,
            "offset": page1.pagination.offset,
            "limit": page1.pagination.limit,
            "has_more": page1.pagination.has_more,
            "messages": [msg_dict(m) for m in page1.messages],
        }
        for peer in (alice, bob, carol):
            dms = await peer.rest.call("get_direct_messages")
            out[f"dms_{peer.username}"] = {
                "total": dms.pagination.total,
                "has_more": dms.pagination.has_more,
                "messages": [msg_dict(m) for m in dms.messages],
            }

        users = await carol.rest.call("get_users")
        out["users"] = [
            {
                "id": u.id,
                "username": u.username,
                "role": u.role.value,
                "bot": u.bot,
                "viewer": u.viewer,
            }
            for u in users
        ]

        # Presence after carol leaves.
        await carol.ws.disconnect()

        deadline = time.monotonic() + WAIT
        while True:
            names = [u.username for u in await alice.rest.call("get_online_users")]
            if carol.username not in names or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        out["online_after_carol_left"] = names
    finally:
        for peer in peers:
            await peer.close()
        out["peers"] = {p.username: p.summary() for p in peers}
        out["names"] = {"alice": alice.username, "bob": bob.username, "carol": carol.username}


async def scenario_receipts(out: dict[str, Any]) -> None:
    alice = await register("author", out)
    bob = await register("reader", out)
    peers = [alice, bob]
    try:
        for peer in peers:
            await peer.connect()
        # Start bob from nothing unread (this may send receipts to other authors).
        await bob.rest.call("mark_all_messages_read")

        ids: dict[str, str] = {}

        async def send(tag: str, dm: bool) -> str:
            content = f"{PREFIX} receipt-{tag}"
            msg = await alice.rest.call(
                "send_message", content, to_username=bob.username if dm else None
            )
            ids[tag] = msg.id
            # Make sure bob saw it before marking it read.
            await bob.wait_message(content)
            return msg.id

        def receipts_for(mid: str) -> list[list[str]]:
            return [r for r in alice.receipts if r[0] == mid]

        async def expect(tag: str) -> bool:
            return await wait_until(lambda: len(receipts_for(ids[tag])) >= 1)

        results: dict[str, bool] = {}

        # WS mark_read: room message, then DM.
        await bob.ws.mark_message_read(await send("ws_room", dm=False))
        results["ws_room"] = await expect("ws_room")
        await bob.ws.mark_message_read(await send("ws_dm", dm=True))
        results["ws_dm"] = await expect("ws_dm")

        # REST mark read: DM, then room message.
        await bob.rest.call("mark_message_read", await send("rest_dm", dm=True))
        results["rest_dm"] = await expect("rest_dm")
        await bob.rest.call("mark_message_read", await send("rest_room", dm=False))
        results["rest_room"] = await expect("rest_room")

        # WS mark_room_read.
        await send("ws_mark_room", dm=False)
        await bob.ws.mark_room_messages_read()
        results["ws_mark_room"] = await expect("ws_mark_room")

        # WS mark_direct_read.
        await send("ws_mark_direct", dm=True)
        await bob.ws.mark_direct_messages_read(alice.username)
        results["ws_mark_direct"] = await expect("ws_mark_direct")

        # WS mark_all_read, one room message and one DM.
        await send("ws_all_room", dm=False)
        await send("ws_all_dm", dm=True)
        await bob.ws.mark_all_messages_read()
        results["ws_all_room"] = await expect("ws_all_room")
        results["ws_all_dm"] = await expect("ws_all_dm")

        # REST mark-all-read.
        await send("rest_all_room", dm=False)
        await send("rest_all_dm", dm=True)
        out["rest_mark_all_result"] = await bob.rest.call("mark_all_messages_read")
        results["rest_all_room"] = await expect("rest_all_room")
        results["rest_all_dm"] = await expect("rest_all_dm")

        # Marking again creates no new receipt. The final fresh mark is a barrier: a
        # duplicate receipt would have reached alice before the receipt for "final".
        await bob.ws.mark_message_read(ids["ws_room"])
        await bob.rest.call("mark_message_read", ids["rest_dm"])
        await bob.ws.mark_message_read(await send("final", dm=False))
        results["final"] = await expect("final")
        # A reader never gets receipts for its own marks; round trip to be sure.
        out["bob_count_end"] = await bob.ws_count()

        out["arrived"] = results
        out["ids"] = ids
    finally:
        for peer in peers:
            await peer.close()
        out["peers"] = {"author": alice.summary(), "reader": bob.summary()}


async def scenario_unread(out: dict[str, Any]) -> None:
    alice = await register("ualice", out)
    bob = await register("ubob", out)
    carol = await register("ucarol", out)
    peers = [alice, bob, carol]
    steps: dict[str, Any] = {}
    out["steps"] = steps
    try:
        for peer in peers:
            await peer.connect()
        steps["baseline_mark_all"] = await bob.rest.call("mark_all_messages_read")
        await alice.rest.call("mark_all_messages_read")
        steps["baseline_rest"] = await bob.rest_count()
        steps["baseline_ws"] = await bob.ws_count()

        async def from_alice(content: str, dm: bool, via_ws: bool) -> None:
            to = bob.username if dm else None
            if via_ws:
                await alice.ws.send_message(content, to_username=to)
            else:
                await alice.rest.call("send_message", content, to_username=to)
            # Bob's live copy proves the server stored and fanned it out.
            await bob.wait_message(content)

        await from_alice(f"{PREFIX} r1", dm=False, via_ws=False)
        await from_alice(f"{PREFIX} r2", dm=False, via_ws=True)
        await from_alice(f"{PREFIX} r3", dm=False, via_ws=False)
        await from_alice(f"{PREFIX} d1", dm=True, via_ws=True)
        await from_alice(f"{PREFIX} d2", dm=True, via_ws=False)
        await carol.rest.call("send_message", f"{PREFIX} c1", to_username=bob.username)
        await bob.wait_message(f"{PREFIX} c1")
        steps["bob_live"] = [m["content"] for m in bob.messages]

        steps["after_sends_rest"] = await bob.rest_count()
        steps["after_sends_ws"] = await bob.ws_count()
        steps["alice_after_sends_rest"] = await alice.rest_count()
        steps["unread_room"] = [msg_dict(m) for m in await bob.rest.call("get_unread_messages")]
        steps["unread_direct"] = [
            msg_dict(m) for m in await bob.rest.call("get_unread_direct_messages")
        ]

        r1 = bob.got(f"{PREFIX} r1")
        await bob.ws.mark_message_read(r1["id"])
        steps["after_ws_mark_read"] = await bob.ws_count()

        await bob.ws.mark_room_messages_read()
        steps["after_ws_mark_room_read"] = await bob.ws_count()

        await bob.ws.mark_direct_messages_read(alice.username)
        steps["after_ws_mark_direct_read"] = await bob.ws_count()
        steps["unread_direct_left"] = [
            m.content for m in await bob.rest.call("get_unread_direct_messages")
        ]

        await from_alice(f"{PREFIX} r4", dm=False, via_ws=True)
        await from_alice(f"{PREFIX} d3", dm=True, via_ws=True)
        steps["after_more_sends"] = await bob.ws_count()

        await bob.ws.mark_all_messages_read()
        steps["after_ws_mark_all_read"] = await bob.ws_count()
        steps["after_ws_mark_all_read_rest"] = await bob.rest_count()
        steps["unread_room_empty"] = len(await bob.rest.call("get_unread_messages"))
        steps["unread_direct_empty"] = len(await bob.rest.call("get_unread_direct_messages"))

        # REST single mark and REST mark-all.
        await from_alice(f"{PREFIX} r5", dm=False, via_ws=False)
        steps["before_rest_mark_read"] = await bob.rest_count()
        await bob.rest.call("mark_message_read", bob.got(f"{PREFIX} r5")["id"])
        steps["after_rest_mark_read"] = await bob.rest_count()

        await from_alice(f"{PREFIX} r6", dm=False, via_ws=False)
        await from_alice(f"{PREFIX} d4", dm=True, via_ws=False)
        steps["before_rest_mark_all"] = await bob.rest_count()
        steps["rest_mark_all_result"] = await bob.rest.call("mark_all_messages_read")
        steps["after_rest_mark_all"] = await bob.ws_count()
    finally:
        for peer in peers:
            await peer.close()
        out["peers"] = {"alice": alice.summary(), "bob": bob.summary(), "carol": carol.summary()}


def conversation_dict(conv: Any) -> dict[str, Any]:
    return {
        "id": conv.id,
        "title": conv.title,
        "description": conv.description,
        "message_ids": conv.message_ids,
        "created_by_username": conv.created_by_username,
        "created_at": conv.created_at,
    }


async def outcome(call: Any) -> dict[str, Any]:
    """What a 2.1.1 user gets from one call: its value, or the exception it raised."""
    try:
        value = await call
    except Exception as exc:
        response = getattr(exc, "response", None)
        return {
            "raised": type(exc).__name__,
            "module": type(exc).__module__,
            "status": getattr(response, "status_code", None),
            "message": str(exc)[:300],
        }
    if value is None:
        return {"value": None}
    if hasattr(value, "conversations"):
        return {
            "value": {
                "conversations": [conversation_dict(c) for c in value.conversations],
                "total": value.total,
                "limit": value.limit,
                "offset": value.offset,
            }
        }
    return {"value": conversation_dict(value)}


async def scenario_conversations(out: dict[str, Any]) -> None:
    """Every conversation method of the sync and async REST clients, as a 2.1.1 user calls
    them. Sync create/update are broken in 2.1.1 itself (they pass ``json_data=`` to httpx)."""
    alice = await register("calice", out)
    bob = await register("cbob", out)
    carol = await register("ccarol", out)
    steps: dict[str, Any] = {}
    out["steps"] = steps
    sync = alice.rest
    async with AsyncTokenBowlClient(api_key=alice.api_key, base_url=HTTP_URL) as aclient:
        try:
            room = (await sync.call("send_message", f"{PREFIX} conv room")).id
            dm = (await sync.call("send_message", f"{PREFIX} conv dm", to_username=bob.username)).id
            others = (
                await bob.rest.call(
                    "send_message", f"{PREFIX} conv dm2", to_username=carol.username
                )
            ).id
            missing = "00000000-0000-4000-8000-000000000000"
            out["ids"] = {"room": room, "dm": dm, "others": others, "missing": missing}

            steps["sync_create"] = await outcome(
                sync.call("create_conversation", title="sync", message_ids=[room])
            )
            steps["async_create"] = await outcome(
                aclient.create_conversation(title="draft", description="d", message_ids=[room, dm])
            )
            conv_id = steps["async_create"]["value"]["id"]
            steps["create_missing"] = await outcome(
                aclient.create_conversation(title="x", message_ids=[room, missing])
            )
            steps["create_others_dm"] = await outcome(
                aclient.create_conversation(title="x", message_ids=[others])
            )
            steps["create_not_uuid"] = await outcome(
                aclient.create_conversation(title="x", message_ids=["not-a-uuid"])
            )
            steps["sync_list"] = await outcome(sync.call("get_conversations"))
            steps["async_list"] = await outcome(aclient.get_conversations(limit=10))
            steps["sync_get"] = await outcome(sync.call("get_conversation", conv_id))
            steps["async_get"] = await outcome(aclient.get_conversation(conv_id))
            steps["sync_update"] = await outcome(
                sync.call("update_conversation", conv_id, title="sync title")
            )
            steps["async_update"] = await outcome(
                aclient.update_conversation(conv_id, title="renamed", message_ids=[dm])
            )
            steps["async_update_nothing"] = await outcome(aclient.update_conversation(conv_id))
            steps["async_update_missing"] = await outcome(
                aclient.update_conversation(conv_id, title="lost", message_ids=[missing])
            )
            steps["after_failed_update"] = await outcome(aclient.get_conversation(conv_id))
            steps["bob_get"] = await outcome(bob.rest.call("get_conversation", conv_id))
            steps["bob_list"] = await outcome(bob.rest.call("get_conversations"))
            steps["sync_delete"] = await outcome(sync.call("delete_conversation", conv_id))
            steps["get_deleted"] = await outcome(aclient.get_conversation(conv_id))
            second = await outcome(aclient.create_conversation(title="second"))
            steps["async_delete"] = await outcome(
                aclient.delete_conversation(second["value"]["id"])
            )
            steps["list_at_end"] = await outcome(aclient.get_conversations())
        finally:
            for peer in (alice, bob, carol):
                await peer.close()


async def scenario_bots(out: dict[str, Any]) -> None:
    """The bot methods of the sync and async REST clients: create, list, update, rotate and
    delete; then the bot's (rotated) key sends over WebSocket and REST, and the owner's
    WebSocket receives both, flagged as a bot's."""
    owner = await register("owner", out)
    bots: dict[str, Any] = {}
    out["bots"] = bots
    try:
        await owner.connect()
        made = await owner.rest.call("create_bot", f"{PREFIX}_bot", emoji="🤖")
        spare = await owner.rest.call("create_bot", f"{PREFIX}_spare")
        bots["created"] = {
            "id": made.id,
            "username": made.username,
            "api_key_len": len(made.api_key),
            "created_by_id": made.created_by_id,
            "created_by": made.created_by,
            "emoji": made.emoji,
        }
        async with AsyncTokenBowlClient(api_key=owner.api_key, base_url=HTTP_URL) as aclient:
            listed = await aclient.get_my_bots()
            bots["listed"] = [[b.id, b.username, b.emoji, b.created_by] for b in listed]
            bots["listed_key_masked"] = [b.api_key.startswith("*") for b in listed]
            updated = await aclient.update_bot(made.id, emoji="🦾")
            bots["updated_emoji"] = updated.emoji
            await aclient.delete_bot(spare.id)
            bots["listed_after_delete"] = [b.id for b in await aclient.get_my_bots()]
        rotated = await owner.rest.call("regenerate_bot_api_key", made.id)
        bots["rotated_message"] = rotated["message"]
        old = Rest(made.api_key)
        try:
            await old.call("get_my_profile")
            bots["old_key"] = "accepted"
        except AuthenticationError:
            bots["old_key"] = "AuthenticationError"
        finally:
            old.close()

        bot = Peer(made.username, made.id, rotated["api_key"])
        try:
            await bot.connect()
            await bot.ws.send_message("beep over websocket")
            sent = await bot.rest.call("send_message", "beep over rest")
            bots["rest_sent_bot_flag"] = sent.from_user_bot
        finally:
            await bot.close()
        flags = {}
        for content in ("beep over websocket", "beep over rest"):
            delivered = await owner.wait_message(content)
            if delivered is not None:
                flags[content] = delivered["from_user_bot"]
        bots["delivered_bot_flags"] = flags
        page = await owner.rest.call("get_messages", limit=10)
        bots["history_bot_flags"] = {
            m.content: m.from_user_bot for m in page.messages if m.content.startswith("beep")
        }

        await owner.rest.call("delete_bot", made.id)
        bots["listed_at_end"] = [b.id for b in await owner.rest.call("get_my_bots")]
        gone = Rest(rotated["api_key"])
        try:
            await gone.call("send_message", "from beyond")
            bots["deleted_key"] = "accepted"
        except AuthenticationError:
            bots["deleted_key"] = "AuthenticationError"
        finally:
            gone.close()
    finally:
        await owner.close()
    out["owner"] = owner.summary()


SCENARIOS = {
    "auth": scenario_auth,
    "messaging": scenario_messaging,
    "receipts": scenario_receipts,
    "unread": scenario_unread,
    "conversations": scenario_conversations,
    "bots": scenario_bots,
}


async def main(name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scenario": name,
        "client_version": importlib.metadata.version("token-bowl-chat"),
        "client_file": token_bowl_chat.__file__,
        "websockets_version": importlib.metadata.version("websockets"),
    }
    try:
        await asyncio.wait_for(SCENARIOS[name](out), timeout=90)
        out["ok"] = True
    except BaseException:
        out["ok"] = False
        out["exception"] = traceback.format_exc()
    return out


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1]))
    print("RESULT:" + json.dumps(result, default=str), flush=True)
