"""One connection's replies, pushed in the order its frames came, while sends are in flight.

A send is admitted in frame order and queued for the next group commit without waiting for
it; the read loop goes on with the next frame, so a client that keeps several sends in flight
has them share commits. Its reply (``message_sent``, or the error the commit gave) waits in a
FIFO behind the replies of the frames before it; a reply that is ready at once (a frame that
did not decode, a send refused at admission) takes its place in the same FIFO. The head is
pushed as soon as it is known, from the future's done callback: no task per connection.

Only sends are pipelined. Every other command first waits until all the sends before it are
answered (:meth:`ReplyPipeline.drain`), so it runs exactly as if frames were handled one at a
time: a ``mark_read`` or an ``edit_message`` sees the messages sent before it stored.

Once the connection has ended, replies still due are dropped (``Connection.push`` refuses
them); the sends themselves are stored all the same (the batcher flushes what it was given).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import Error, Event, encode_event
from token_bowl_chat_server.api.errors import error_event
from token_bowl_chat_server.domain.errors import DomainError
from token_bowl_chat_server.realtime.connection import Connection
from token_bowl_chat_server.realtime.lean_sync import Flag

logger = logging.getLogger(__name__)

R = TypeVar("R")


class _Pending(Generic[R]):
    """A reply not known yet: the outcome future and how to turn it into the reply."""

    __slots__ = ("future", "reply", "request_id")

    def __init__(
        self, future: asyncio.Future[R], reply: Callable[[R, Any], Event], request_id: Any
    ) -> None:
        self.future = future
        self.reply = reply
        self.request_id = request_id

    def event(self) -> Event:
        try:
            return self.reply(self.future.result(), self.request_id)
        except DomainError as exc:
            return error_event(exc, self.request_id)
        except (Exception, asyncio.CancelledError):
            logger.exception("pipelined send failed")
            return Error(
                error="Internal server error",
                code=ErrorCode.INTERNAL_ERROR.value,
                request_id=self.request_id,
            )


class ReplyPipeline:
    def __init__(self, conn: Connection, window: int) -> None:
        """``window``: the most replies waiting at once; a send beyond it waits for the
        oldest (1: no pipelining, every send answered before the next frame is read)."""
        self._conn = conn
        self._window = window
        # Made at the first send: an empty deque is about 600 bytes, and most connections
        # of a chat (people reading, bots waiting for a mention) are idle.
        self._waiting: collections.deque[Event | _Pending[Any]] | None = None
        self._advanced = Flag()  # one per connection: allocates only while awaited

    async def make_room(self) -> None:
        """Wait while the window is full; call before each frame, so at most ``window``
        replies ever wait."""
        await self._wait_for_at_most(self._window - 1)

    def reply(self, event: Event) -> None:
        """A reply known now, pushed after those of the frames before it."""
        if self._waiting:  # None or empty: nothing to wait behind
            self._waiting.append(event)
        else:
            self._conn.push(encode_event(event))

    def send(
        self, future: asyncio.Future[R], reply: Callable[[R, Any], Event], request_id: Any
    ) -> None:
        """The reply of a send whose outcome ``future`` will hold, pushed after those of the
        frames before it. ``reply(outcome, request_id)`` makes the frame; a ``DomainError``
        it raises becomes an error frame."""
        if self._waiting is None:
            self._waiting = collections.deque()
        self._waiting.append(_Pending(future, reply, request_id))
        future.add_done_callback(self._on_done)

    async def drain(self) -> None:
        """Wait until every reply queued so far has been pushed (or dropped)."""
        await self._wait_for_at_most(0)

    async def _wait_for_at_most(self, count: int) -> None:
        while self._waiting and len(self._waiting) > count:
            self._advanced.clear()
            await self._advanced.wait()

    def _on_done(self, _future: asyncio.Future[Any]) -> None:
        waiting = self._waiting
        assert waiting is not None  # made by the send whose future this is
        pushed = False
        while waiting:
            head = waiting[0]
            if isinstance(head, _Pending):
                if not head.future.done():
                    break
                event = head.event()
            else:
                event = head
            waiting.popleft()
            pushed = True
            self._conn.push(encode_event(event))
        if pushed:
            self._advanced.set()
