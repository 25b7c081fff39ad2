"""Editing and deleting messages: who may, the stored event, and the live push.

An author may edit or delete their own messages; an admin anyone's (``domain/permissions``).
Each edit or delete is stored as an event with its own ``seq`` (``storage/edits.py``) and
pushed, as ``message_edited`` / ``message_deleted``, to every extended connection that can see
the message: the room's to everyone (the actor's own connections included, so all their
devices agree), a DM's to both parties. Legacy clients (2.1.1, the original web app) do not
know these frames and get none; they see the change in history.
"""

from __future__ import annotations

import asyncio

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import MessageDeleted, MessageEdited, encode_event
from token_bowl_chat.protocol.models import MAX_CONTENT_LENGTH
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import Message, User, iso
from token_bowl_chat_server.domain.errors import InvalidInput, NotFound
from token_bowl_chat_server.domain.ids import is_message_id
from token_bowl_chat_server.domain.permissions import Action, can_see, require, require_admin
from token_bowl_chat_server.realtime.audience import Audience, Dialect, Room, Users
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import EditStore, Publisher
from token_bowl_chat_server.storage.edits import MessageEvent


def event_audience(message: Message) -> Audience:
    """Every extended connection that can see ``message``."""
    if message.is_room:
        return Room(dialect=Dialect.EXTENDED)
    parties = {message.from_user_id, message.to_user_id} - {None}
    return Users(frozenset(p for p in parties if p is not None), Dialect.EXTENDED)


def edited_frame(event: MessageEvent, request_id: str | int | None = None) -> MessageEdited:
    return MessageEdited(
        message=render.message(event.message),
        edited_at=iso(event.at),
        seq=event.seq,
        request_id=request_id,
    )


def deleted_frame(event: MessageEvent, request_id: str | int | None = None) -> MessageDeleted:
    return MessageDeleted(
        message_id=event.message.id,
        seq=event.seq,
        deleted_at=iso(event.at),
        request_id=request_id,
    )


def _not_found(message_id: str) -> NotFound:
    return NotFound(f"Message {message_id} not found", ErrorCode.MESSAGE_NOT_FOUND)


def _deleted(message_id: str) -> NotFound:
    return NotFound(f"Message {message_id} was deleted", ErrorCode.MESSAGE_DELETED)


def check_content(content: str | None) -> str:
    """The same rules as a send (REST validates the body before this; WS frames reach it)."""
    if not content:
        raise InvalidInput("Missing content field", ErrorCode.MISSING_FIELD)
    if len(content) > MAX_CONTENT_LENGTH:
        raise InvalidInput(
            f"Content must be at most {MAX_CONTENT_LENGTH} characters",
            ErrorCode.CONTENT_TOO_LONG,
        )
    return content


class EditService:
    def __init__(
        self,
        edits: EditStore,
        publisher: Publisher,
        publish_order: asyncio.Lock,
        clock: WallClock = now_micros,
    ) -> None:
        self.edits = edits
        self.publisher = publisher
        # Shared with the message writer: a seq is published only after every smaller one.
        self.publish_order = publish_order
        self.clock = clock
        self.edited = 0
        self.deleted = 0

    async def _visible(self, user: User, message_id: str | None) -> Message:
        """The message, if ``user`` can see it and it is not deleted."""
        if not message_id:
            raise InvalidInput("Missing message_id field", ErrorCode.MISSING_FIELD)
        found = await self.edits.find(message_id) if is_message_id(message_id) else None
        if found is None or not can_see(user, found.message):
            raise _not_found(message_id)
        if found.deleted:
            raise _deleted(message_id)
        return found.message

    async def edit(self, user: User, message_id: str | None, content: str | None) -> MessageEvent:
        """Replace the content of a message the caller wrote (or any, for an admin)."""
        text = check_content(content)
        message = await self._visible(user, message_id)
        own = message.from_user_id == user.id
        if own:
            require(user, Action.EDIT_OWN_MESSAGE)
        else:
            require(user, Action.EDIT_ANY_MESSAGE, "You can only edit your own messages")
        return await self._edit(message, text, user)

    async def delete(self, user: User, message_id: str | None) -> MessageEvent:
        """Delete a message the caller wrote (or any, for an admin)."""
        message = await self._visible(user, message_id)
        if message.from_user_id == user.id:
            require(user, Action.DELETE_OWN_MESSAGE)
        else:
            require(user, Action.DELETE_ANY_MESSAGE, "Only admins can delete messages")
        return await self._delete(message, user)

    # --- the admin routes (PROTOCOL.md 4.8): any message, DMs of others included -----------

    async def admin_get(self, admin: User, message_id: str) -> Message:
        require_admin(admin)
        return await self._any(message_id)

    async def admin_edit(self, admin: User, message_id: str, content: str) -> MessageEvent:
        require_admin(admin)
        text = check_content(content)
        return await self._edit(await self._any(message_id), text, admin)

    async def admin_delete(self, admin: User, message_id: str) -> MessageEvent:
        require_admin(admin)
        return await self._delete(await self._any(message_id), admin)

    async def _any(self, message_id: str) -> Message:
        found = await self.edits.find(message_id) if is_message_id(message_id) else None
        if found is None:
            raise _not_found(message_id)
        if found.deleted:
            raise _deleted(message_id)
        return found.message

    # --- storing and publishing -------------------------------------------------------------

    async def _edit(self, message: Message, content: str, actor: User) -> MessageEvent:
        async with self.publish_order:
            event = await self.edits.edit(message, content, actor.id, self.clock())
            if event is None:  # deleted by someone else a moment ago
                raise _deleted(message.id)
            self.edited += 1
            self.publisher.publish(
                event_audience(event.message), encode_event(edited_frame(event)), event.seq
            )
        return event

    async def _delete(self, message: Message, actor: User) -> MessageEvent:
        async with self.publish_order:
            event = await self.edits.delete(message, actor.id, self.clock())
            if event is None:  # deleted by someone else a moment ago
                raise _deleted(message.id)
            self.deleted += 1
            self.publisher.publish(
                event_audience(event.message), encode_event(deleted_frame(event)), event.seq
            )
        return event
