"""Against a server that speaks only the upstream protocol (no hello, seq or request_id), the
client falls back to upstream behaviour instead of failing. The peer here is a fake that
answers as PROTOCOL.md section 5 describes the upstream server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import Server, ServerConnection

from token_bowl_chat import TokenBowlError, TokenBowlWebSocket
from token_bowl_chat import websocket as ws_module
from token_bowl_chat.events import MessageDeletedEvent
from token_bowl_chat.models import UnreadCountResponse


class UpstreamPeer:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.server: Server | None = None
        self.connections: list[ServerConnection] = []

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def handler(self, conn: ServerConnection) -> None:
        self.paths.append(conn.request.path if conn.request else "")
        self.connections.append(conn)
        async for raw in conn:
            frame = json.loads(raw)
            self.received.append(frame)
            await conn.send(json.dumps(self.reply(frame)))

    @staticmethod
    def reply(frame: dict[str, Any]) -> dict[str, Any]:
        kind = frame.get("type", "message")
        if kind == "message":
            message = {
                "id": "0d6c2a52-0000-4000-8000-000000000001",
                "from_user_id": "u1",
                "from_username": "me",
                "content": frame["content"],
                "message_type": "room",
                "timestamp": "2025-10-30T12:34:56.789012+00:00",
            }
            return {"type": "message_sent", "status": "sent", "message": message}
        if kind == "mark_room_read":
            return {"status": "marked_read", "count": 7}
        if kind == "delete_message":  # admin only there; answered as to an admin
            return {"type": "message_deleted", "message_id": frame["message_id"]}
        if kind == "get_unread_count":
            return {
                "type": "unread_count",
                "unread_room_messages": 2,
                "unread_direct_messages": 1,
                "total_unread": 3,
            }
        return {"type": "error", "error": f"Unknown message type: {kind}"}


@pytest.fixture
async def peer(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[UpstreamPeer]:
    monkeypatch.setattr(ws_module, "HELLO_TIMEOUT", 0.2)
    fake = UpstreamPeer()
    fake.server = await websockets.serve(fake.handler, "127.0.0.1", 0)
    yield fake
    fake.server.close()
    await fake.server.wait_closed()


async def test_replies_are_matched_in_order_and_typing_is_not_sent(peer: UpstreamPeer) -> None:
    counts: list[UnreadCountResponse] = []
    async with TokenBowlWebSocket(
        api_key="k" * 64, base_url=peer.url, on_unread_count=counts.append
    ) as ws:
        sent = await ws.send_message("hello upstream")
        assert sent.content == "hello upstream" and sent.seq is None
        await ws.send_typing_indicator()
        assert await ws.mark_room_messages_read() == 7
        count = await ws.get_unread_count()
        assert count is not None and count.total_unread == 3
        again = await ws.send_message("second")
        assert again.content == "second"
    assert [f.get("type") for f in peer.received] == [
        "message",
        "mark_room_read",
        "get_unread_count",
        "message",
    ]
    # Sent always (a hello may come late); that server ignores unknown fields.
    assert isinstance(peer.received[0]["client_message_id"], str)
    assert counts and counts[0].total_unread == 3


async def test_reconnect_without_resume(peer: UpstreamPeer) -> None:
    connects: list[str] = []
    ws = TokenBowlWebSocket(
        api_key="k" * 64,
        base_url=peer.url,
        on_connect=lambda: connects.append("up"),
        reconnect_initial_delay=0.01,
    )
    await ws.connect()
    await peer.connections[0].close(1011)
    async with asyncio.timeout(5):
        while len(connects) < 2:
            await asyncio.sleep(0.01)
    assert all("since_seq" not in path for path in peer.paths)
    assert (await ws.send_message("after reconnect")).content == "after reconnect"
    await ws.disconnect()


async def test_delete_message_reply_without_request_id_is_the_answer_not_a_push(
    peer: UpstreamPeer,
) -> None:
    """Upstream's ``message_deleted`` reply carries no request_id: it resolves the request in
    order and fires no ``on_message_deleted``; ``edit_message`` it does not know."""
    deleted: list[str] = []
    async with TokenBowlWebSocket(
        api_key="k" * 64, base_url=peer.url, on_message_deleted=deleted.append
    ) as ws:
        result = await ws.delete_message("m-1")
        assert result == MessageDeletedEvent("m-1", None)
        with pytest.raises(TokenBowlError, match="Unknown message type: edit_message"):
            await ws.edit_message("m-1", "new text")
        assert (await ws.send_message("still in order")).content == "still in order"
    assert deleted == []
    assert [f.get("type") for f in peer.received] == ["delete_message", "edit_message", "message"]
