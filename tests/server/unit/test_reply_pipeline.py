"""api/ws/pipeline.py: replies leave in frame order whatever order the sends finish in."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from token_bowl_chat.protocol.events import Error, Event, Pong
from token_bowl_chat_server.api.ws.pipeline import ReplyPipeline
from token_bowl_chat_server.domain.errors import RateLimited
from token_bowl_chat_server.realtime.connection import Connection


class Outbox:
    """The one part of a connection the pipeline uses."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.open = True

    def push(self, text: str, seq: int | None = None) -> bool:
        if self.open:
            self.frames.append(json.loads(text))
        return self.open

    @property
    def request_ids(self) -> list[Any]:
        return [frame.get("request_id") for frame in self.frames]


def pong(outcome: str, request_id: Any) -> Event:
    """Stands in for message_sent: the outcome travels in the request id."""
    if outcome == "refused":
        raise RateLimited(1.0)
    return Pong(request_id=f"{request_id}:{outcome}")


def pipeline(window: int = 8) -> tuple[ReplyPipeline, Outbox]:
    outbox = Outbox()
    return ReplyPipeline(cast(Connection, outbox), window), outbox


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_replies_leave_in_frame_order_whatever_order_the_sends_finish_in() -> None:
    replies, outbox = pipeline()
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    replies.send(first, pong, "a")
    replies.reply(Error(error="bad frame", code="invalid_frame", request_id="b"))
    replies.send(second, pong, "c")
    second.set_result("ok")
    await settle()
    assert outbox.frames == []  # all wait for the first send
    first.set_result("ok")
    await settle()
    assert outbox.request_ids == ["a:ok", "b", "c:ok"]
    replies.reply(Pong(request_id="d"))  # nothing in flight: straight out
    assert outbox.request_ids[-1] == "d"


async def test_a_failed_send_is_answered_with_its_error_in_its_place() -> None:
    replies, outbox = pipeline()
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(3)]
    for i, future in enumerate(futures):
        replies.send(future, pong, i)
    futures[0].set_result("ok")
    futures[1].set_result("refused")  # a rule refused it inside the commit
    futures[2].set_exception(RuntimeError("bug"))
    await replies.drain()
    assert outbox.request_ids == ["0:ok", 1, 2]
    assert outbox.frames[1]["code"] == "rate_limited"
    assert outbox.frames[2]["code"] == "internal_error"


async def test_the_window_holds_the_next_frame_until_the_oldest_is_answered() -> None:
    replies, outbox = pipeline(window=2)
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(2)]
    for i, future in enumerate(futures):
        await replies.make_room()
        replies.send(future, pong, i)
    waiting = asyncio.create_task(replies.make_room())
    await settle()
    assert not waiting.done()
    futures[1].set_result("ok")  # not the oldest: no room yet
    await settle()
    assert not waiting.done()
    futures[0].set_result("ok")
    await asyncio.wait_for(waiting, 5)
    assert outbox.request_ids == ["0:ok", "1:ok"]


async def test_drain_waits_for_every_send_before_it() -> None:
    replies, outbox = pipeline()
    future = asyncio.get_running_loop().create_future()
    replies.send(future, pong, "s")
    drained = asyncio.create_task(replies.drain())
    await settle()
    assert not drained.done()
    future.set_result("ok")
    await asyncio.wait_for(drained, 5)
    assert outbox.request_ids == ["s:ok"]


async def test_replies_due_after_the_connection_ended_are_dropped() -> None:
    replies, outbox = pipeline()
    future = asyncio.get_running_loop().create_future()
    replies.send(future, pong, "late")
    outbox.open = False
    future.set_result("ok")
    await asyncio.wait_for(replies.drain(), 5)  # nothing stays waiting
    assert outbox.frames == []


async def test_a_window_of_one_answers_each_send_before_the_next_frame() -> None:
    replies, outbox = pipeline(window=1)
    future = asyncio.get_running_loop().create_future()
    await replies.make_room()
    replies.send(future, pong, "only")
    waiting = asyncio.create_task(replies.make_room())
    await settle()
    assert not waiting.done()
    future.set_result("ok")
    await asyncio.wait_for(waiting, 5)
    assert outbox.request_ids == ["only:ok"]
