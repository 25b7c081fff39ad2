"""Typing indicators: relayed to the audience, expired by the server, never stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from token_bowl_chat.protocol.events import Typing, TypingStopped, encode_event
from token_bowl_chat_server.domain.entities import User, iso
from token_bowl_chat_server.domain.permissions import check_can_send
from token_bowl_chat_server.domain.typing import Key, TypingTracker
from token_bowl_chat_server.realtime.audience import Audience, Dialect, Room, Users
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import Publisher, UserStore
from token_bowl_chat_server.services.recipients import direct_recipient


def _audience(key: Key, dialect: Dialect = Dialect.ANY) -> Audience:
    typist, target = key
    if target is None:
        return Room(exclude_user_id=typist, dialect=dialect)
    return Users(frozenset({target}), dialect=dialect)


class TypingService:
    def __init__(
        self,
        users: UserStore,
        publisher: Publisher,
        timeout: float,
        relay_interval: float,
        clock: Callable[[], float] = time.monotonic,
        wall: WallClock = now_micros,
    ) -> None:
        self.users = users
        self.publisher = publisher
        self.clock = clock
        self.wall = wall
        self.tracker = TypingTracker(timeout, relay_interval)
        self._names: dict[Key, tuple[str, str | None]] = {}
        self._changed = asyncio.Event()
        # With several server processes, tells the others about each message sent, so the
        # process holding the typist's socket stops the indicator (``stop_on_send`` there).
        self.tell_other_nodes: Callable[[str, str | None], None] | None = None

    async def typing(self, user: User, to_username: str | None, connection_id: int) -> None:
        """``user`` is typing to the room or to ``to_username``. Raises like a send would."""
        check_can_send(user, direct=to_username is not None)
        recipient = await direct_recipient(self.users, to_username)
        key: Key = (user.id, recipient.id if recipient else None)
        self._names[key] = (user.username, to_username)
        if self.tracker.start(key, connection_id, self.clock()):
            frame = Typing(
                username=user.username, to_username=to_username, timestamp=iso(self.wall())
            )
            self.publisher.publish(_audience(key), encode_event(frame))
        self._changed.set()

    def message_sent(self, user_id: str, username: str, to_user_id: str | None) -> None:
        """Sending a message ends the typist's indicator for that target, on every node."""
        self.stop_on_send(user_id, to_user_id)
        if self.tell_other_nodes is not None:
            self.tell_other_nodes(user_id, to_user_id)

    def stop_on_send(self, user_id: str, to_user_id: str | None) -> None:
        """The indicator this node tracks for ``user_id`` to that target, if any, stops."""
        key: Key = (user_id, to_user_id)
        if self.tracker.stop(key):
            self._announce_stop(key)

    def connection_closed(self, connection_id: int) -> None:
        for key in self.tracker.drop_connection(connection_id):
            self._announce_stop(key)

    def expire(self) -> None:
        for key in self.tracker.expire(self.clock()):
            self._announce_stop(key)

    def _announce_stop(self, key: Key) -> None:
        username, to_username = self._names.pop(key, ("", None))
        frame = TypingStopped(username=username, to_username=to_username)
        # Legacy clients expire indicators by themselves; they would misread this frame.
        self.publisher.publish(_audience(key, Dialect.EXTENDED), encode_event(frame))

    async def run_expiry(self) -> None:
        """Announce indicators that were not renewed in time, as soon as they lapse."""
        while True:
            deadline = self.tracker.next_deadline()
            self._changed.clear()
            if deadline is None:
                await self._changed.wait()
                continue
            delay = max(0.0, deadline - self.clock())
            try:
                async with asyncio.timeout(delay):
                    await self._changed.wait()
            except TimeoutError:
                self.expire()
