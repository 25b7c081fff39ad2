"""Marking read, unread counts and lists, and read receipts to authors."""

from __future__ import annotations

from typing import Literal

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import ReadReceipt, ReadUpTo, encode_event
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import Message, UnreadCounts, User, iso
from token_bowl_chat_server.domain.errors import InvalidInput, NotFound
from token_bowl_chat_server.domain.ids import is_message_id
from token_bowl_chat_server.domain.permissions import can_see
from token_bowl_chat_server.realtime.audience import Dialect, Users
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import MessageStore, Publisher, ReadStore, UserStore
from token_bowl_chat_server.storage.reads import NewlyRead

ReadScope = Literal["room", "direct", "all"]

# Per-message receipts a legacy connection gets for one author's messages in one bulk mark.
LEGACY_RECEIPTS_PER_AUTHOR = 20


class ReadService:
    """Every way of marking read tells the author, REST and WebSocket, single and bulk, and
    sends the reader's new unread counts to all the reader's extended connections, so every
    device of theirs shows the same numbers (upstream never pushed counts, gap 13)."""

    def __init__(
        self,
        users: UserStore,
        messages: MessageStore,
        reads: ReadStore,
        publisher: Publisher,
        clock: WallClock = now_micros,
    ) -> None:
        self.users = users
        self.messages = messages
        self.reads = reads
        self.publisher = publisher
        self.clock = clock

    async def unread_counts(self, user: User) -> UnreadCounts:
        return await self.reads.unread_counts(user.id)

    async def unread_room(self, user: User, limit: int, offset: int) -> list[Message]:
        return await self.reads.unread_room(user.id, limit, offset)

    async def unread_direct(self, user: User, limit: int, offset: int) -> list[Message]:
        return await self.reads.unread_direct(user.id, limit, offset)

    async def mark_read(self, user: User, message_id: str | None) -> None:
        """Mark one message read; idempotent. Someone else's DM is "not found"."""
        if not message_id:
            raise InvalidInput("Missing message_id field", ErrorCode.MISSING_FIELD)
        message = await self.messages.by_id(message_id) if is_message_id(message_id) else None
        if message is None or not can_see(user, message):
            raise NotFound(f"Message {message_id} not found", ErrorCode.MESSAGE_NOT_FOUND)
        now = self.clock()
        if not await self.reads.mark_read(user.id, message, now):
            return  # read before: no receipt, same counts
        if message.from_user_id is not None and message.from_user_id != user.id:
            receipt = ReadReceipt(message_id=message.id, read_by=user.username, read_at=iso(now))
            self.publisher.publish(Users(frozenset({message.from_user_id})), encode_event(receipt))
        await self._push_counts(user)

    async def mark_all_read(self, user: User) -> int:
        # Counts are exact, so none unread means nothing to mark: answer from one read, with
        # no write transaction (which would wait for the write lock and sync the disk).
        if (await self.reads.unread_counts(user.id)).total == 0:
            return 0
        newly = await self.reads.mark_all_read(user.id)
        await self._after_bulk(user, newly, "all", self.clock())
        return len(newly)

    async def mark_room_read(self, user: User) -> int:
        newly = await self.reads.mark_room_read(user.id)
        await self._after_bulk(user, newly, "room", self.clock())
        return len(newly)

    async def mark_direct_read(self, user: User, from_username: str | None) -> int:
        if not from_username:
            raise InvalidInput("Missing from_username field", ErrorCode.MISSING_FIELD)
        sender = await self.users.by_username(from_username)
        if sender is None:
            raise NotFound(f"User {from_username} not found", ErrorCode.USER_NOT_FOUND)
        now = self.clock()
        newly = await self.reads.mark_direct_read(user.id, sender.id, now)
        await self._after_bulk(user, newly, "direct", now)
        return len(newly)

    async def _after_bulk(
        self, reader: User, newly: list[NewlyRead], scope: ReadScope, now: int
    ) -> None:
        """Each author gets one ``read_up_to`` however many of their messages were read; a
        legacy connection, which only knows per-message receipts, gets those for the author's
        newest :data:`LEGACY_RECEIPTS_PER_AUTHOR` messages only. Either way a mark's cost to an
        author is bounded, so no reader can overflow an author's outbox by marking."""
        if not newly:
            return  # nothing changed: no receipts, same counts
        read_at = iso(now)
        by_author: dict[str, list[NewlyRead]] = {}
        for item in newly:  # in seq order
            if item.author_id is not None and item.author_id != reader.id:
                by_author.setdefault(item.author_id, []).append(item)
        for author_id, items in by_author.items():
            last = items[-1]
            summary = ReadUpTo(
                read_by=reader.username,
                scope=scope,
                up_to_seq=last.seq,
                last_message_id=last.message_id,
                count=len(items),
                read_at=read_at,
            )
            author = frozenset({author_id})
            self.publisher.publish(Users(author, Dialect.EXTENDED), encode_event(summary))
            for item in items[-LEGACY_RECEIPTS_PER_AUTHOR:]:
                receipt = ReadReceipt(
                    message_id=item.message_id, read_by=reader.username, read_at=read_at
                )
                self.publisher.publish(Users(author, Dialect.LEGACY), encode_event(receipt))
        await self._push_counts(reader)

    async def _push_counts(self, reader: User) -> None:
        pushed = render.unread_count_event(await self.reads.unread_counts(reader.id))
        # Only to extended connections: the 2.x SDK takes any ``unread_count`` for the reply
        # to its own request, so a push could answer its next ``get_unread_count`` wrongly.
        self.publisher.publish(
            Users(frozenset({reader.id}), Dialect.EXTENDED), encode_event(pushed)
        )
