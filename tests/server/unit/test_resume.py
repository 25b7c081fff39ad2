"""The resume replay against a fake message store: what ``resumed`` may claim, and what live
frames a replayed connection still gets (suspected defect of issue 7)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.server.unit.test_hub import FakeSocket, user
from tests.waiting import eventually
from token_bowl_chat.protocol.events import encode_event
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import Message
from token_bowl_chat_server.realtime.connection import Connection
from token_bowl_chat_server.services.resume import ResumeService


def message(seq: int) -> Message:
    return Message(
        seq, f"id-{seq}", "author", "author", None, None, False, None, None, f"m{seq}", 0
    )


class Store:
    """Messages 1..3 are committed and published. Message 4 is committed while the replay
    reads its last page, and is published only after the replay has ended."""

    def __init__(self) -> None:
        self.committed = 3

    async def last_seq(self) -> int:
        return self.committed

    async def delivered_after(self, user_id: str, after: int, limit: int) -> list[Message]:
        page = [message(seq) for seq in range(after + 1, self.committed + 1)][:limit]
        self.committed = 4  # committed just after this read, not published yet
        return page


def frames(socket: FakeSocket) -> list[dict[str, Any]]:
    return [json.loads(text) for text in socket.sent]


async def test_resumed_claims_only_what_the_client_was_sent() -> None:
    socket = FakeSocket()
    conn = Connection(socket, user("me"), 64, now=0.0, extended=True)
    conn.begin_replay()
    await ResumeService(Store(), 30.0).start(user("me"), conn, since_seq=0)  # type: ignore[arg-type]
    await eventually(lambda: any(f.get("type") == "resumed" for f in frames(socket)))
    resumed = next(f for f in frames(socket) if f.get("type") == "resumed")
    seen = [f["seq"] for f in frames(socket) if "seq" in f]
    assert seen == [1, 2, 3]
    # Message 4 was never sent: a client told it had seen up to 4 would resume after it, and
    # lose it, if it disconnected before 4 was published.
    assert resumed["last_seq"] == 3, resumed

    # Published late, 4 still arrives; a late copy of a replayed message does not.
    conn.push(encode_event(render.message(message(3))), 3)
    conn.push(encode_event(render.message(message(4))), 4)
    await eventually(lambda: any(f.get("seq") == 4 for f in frames(socket)))
    assert [f["seq"] for f in frames(socket) if "seq" in f] == [1, 2, 3, 4]
    await conn.finish()


async def test_a_replay_ends_when_the_connection_closes() -> None:
    socket = FakeSocket(stuck=True)  # a peer that never reads
    conn = Connection(socket, user("me"), 2, now=0.0, extended=True)
    conn.begin_replay()
    replay = asyncio.create_task(
        ResumeService(Store(), 30.0).start(user("me"), conn, since_seq=0)  # type: ignore[arg-type]
    )
    await eventually(lambda: conn.queued >= 2, what="the replay never filled the outbox")
    assert not replay.done()
    conn.close(4001, "slow consumer")
    async with asyncio.timeout(5):
        await asyncio.wait({replay})
    assert replay.exception() is not None  # ConnectionClosed: the replay stopped
    await conn.finish()


class CommittedWhileJoining:
    """Message 4 was committed after the connection joined the hub but before its opening
    read of last_seq; its live frame was held meanwhile."""

    async def last_seq(self) -> int:
        return 4

    async def delivered_after(self, user_id: str, after: int, limit: int) -> list[Message]:
        raise AssertionError("a fresh connection replays nothing")


async def test_a_fresh_connection_gets_every_frame_held_while_it_opened() -> None:
    # hello says last_seq 4, and clients resume from there: a held frame for 4 dropped as
    # "history" was lost for good (seen on PostgreSQL under load, test_resume.py).
    socket = FakeSocket()
    conn = Connection(socket, user("me"), 64, now=0.0, extended=True)
    conn.begin_replay()
    conn.push(encode_event(render.message(message(4))), 4)  # live, while the connection opens
    await ResumeService(CommittedWhileJoining(), 30.0).start(user("me"), conn, since_seq=None)  # type: ignore[arg-type]
    await eventually(lambda: any(f.get("seq") == 4 for f in frames(socket)))
    assert [f.get("type") for f in frames(socket)] == ["hello", None]
    await conn.finish()
