"""Marking read, unread counts and lists, and read receipts to authors."""

from __future__ import annotations

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import ReadReceipt, encode_event
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import Message, UnreadCounts, User, iso
from token_bowl_chat_server.domain.errors import InvalidInput, NotFound
from token_bowl_chat_server.domain.ids import is_message_id
from token_bowl_chat_server.domain.permissions import can_see
from token_bowl_chat_server.realtime.audience import Users
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import MessageStore, Publisher, ReadStore, UserStore
from token_bowl_chat_server.storage.reads import NewlyRead


class ReadService:
    """Every way of marking read tells the author, REST and WebSocket, single and bulk, and
    sends the reader's new unread counts to all the reader's connections, so every device of
    theirs shows the same numbers (upstream never pushed counts, gap 13)."""

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
        if await self.reads.mark_read(user.id, message, now):
            await self._after_marking(user, [NewlyRead(message.id, message.from_user_id)], now)

    async def mark_all_read(self, user: User) -> int:
        newly = await self.reads.mark_all_read(user.id)
        await self._after_marking(user, newly, self.clock())
        return len(newly)

    async def mark_room_read(self, user: User) -> int:
        newly = await self.reads.mark_room_read(user.id)
        await self._after_marking(user, newly, self.clock())
        return len(newly)

    async def mark_direct_read(self, user: User, from_username: str | None) -> int:
        if not from_username:
            raise InvalidInput("Missing from_username field", ErrorCode.MISSING_FIELD)
        sender = await self.users.by_username(from_username)
        if sender is None:
            raise NotFound(f"User {from_username} not found", ErrorCode.USER_NOT_FOUND)
        now = self.clock()
        newly = await self.reads.mark_direct_read(user.id, sender.id, now)
        await self._after_marking(user, newly, now)
        return len(newly)

    async def _after_marking(self, reader: User, newly: list[NewlyRead], now: int) -> None:
        if not newly:
            return  # nothing changed: no receipts, same counts
        read_at = iso(now)
        for item in newly:
            if item.author_id is None or item.author_id == reader.id:
                continue
            frame = ReadReceipt(
                message_id=item.message_id, read_by=reader.username, read_at=read_at
            )
            self.publisher.publish(Users(frozenset({item.author_id})), encode_event(frame))
        pushed = render.unread_count_event(await self.reads.unread_counts(reader.id))
        self.publisher.publish(Users(frozenset({reader.id})), encode_event(pushed))
