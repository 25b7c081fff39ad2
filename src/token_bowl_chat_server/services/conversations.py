"""Conversations: create, list, read, update, delete; the same use cases for REST and WebSocket.

Upstream saved a conversation with ids it had just reported as missing (WebSocket) and let
anyone list a DM they were not part of; here every listed id must name a message the caller
may see, or the whole request is refused and nothing changes (PROTOCOL.md section 8, gap 11).
An update that changes nothing returns the conversation as it is (upstream: 500, gap 21).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat_server.domain.conversations import (
    Conversation,
    MessageRef,
    check_can_delete,
    check_can_update,
    check_can_view,
)
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import InvalidInput, NotFound
from token_bowl_chat_server.domain.ids import is_message_id
from token_bowl_chat_server.domain.permissions import (
    Action,
    allowed,
    can_see,
    require_admin,
)
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import ConversationStore
from token_bowl_chat_server.storage.conversations import NewConversation


def _conversation_not_found(conversation_id: str) -> NotFound:
    return NotFound(f"Conversation {conversation_id} not found", ErrorCode.CONVERSATION_NOT_FOUND)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class ConversationService:
    def __init__(self, store: ConversationStore, clock: WallClock = now_micros) -> None:
        self.store = store
        self.clock = clock

    async def create(
        self,
        user: User,
        title: str | None,
        description: str | None,
        message_ids: Sequence[str] | None,
    ) -> Conversation:
        """Any role may create. Raises InvalidInput (an id that is not a UUID) or NotFound (a
        message that does not exist or that ``user`` may not see); then nothing is stored."""
        refs = await self._resolve(user, message_ids or ())
        new = NewConversation(
            id=str(uuid.uuid4()),
            title=title,
            description=description,
            created_by_id=user.id,
            created_by_username=user.username,
            created_at=self.clock(),
            message_seqs=[seq for seq, _ in refs],
        )
        await self.store.create(new)
        return Conversation(
            id=new.id,
            title=title,
            description=description,
            created_by_id=user.id,
            created_by_username=user.username,
            created_at=new.created_at,
            messages=tuple(ref for _, ref in refs),
        )

    async def page(self, user: User, limit: int, offset: int) -> tuple[list[Conversation], int]:
        """Newest first, with the total: the caller's own, or everyone's for a role that reads
        any conversation (viewers)."""
        everyone = allowed(user.role, Action.READ_ANY_CONVERSATION)
        return await self.store.page(None if everyone else user.id, limit, offset)

    async def get(self, user: User, conversation_id: str | None) -> Conversation:
        conversation = await self._find(conversation_id)
        check_can_view(user, conversation)
        return conversation

    async def update(
        self,
        user: User,
        conversation_id: str | None,
        title: str | None,
        description: str | None,
        message_ids: Sequence[str] | None,
    ) -> Conversation:
        """Set the fields that are not ``None``; ``message_ids`` replaces the whole list. With
        nothing to set, the conversation is returned unchanged."""
        conversation = await self._find(conversation_id)
        check_can_update(user, conversation)
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = title
        if description is not None:
            values["description"] = description
        seqs = None
        if message_ids is not None:
            seqs = [seq for seq, _ in await self._resolve(user, message_ids)]
        if not values and seqs is None:
            return conversation
        if not await self.store.update(conversation.id, values, seqs):
            raise _conversation_not_found(conversation.id)
        return await self._find(conversation.id)

    async def delete(self, user: User, conversation_id: str | None) -> str:
        """The creator, or an admin (on REST and WebSocket alike). Returns the id deleted."""
        conversation = await self._find(conversation_id)
        check_can_delete(user, conversation)
        return await self._delete(conversation.id)

    async def admin_delete(self, user: User, conversation_id: str) -> str:
        """``DELETE /admin/conversations/{id}``: admins only, checked before the lookup."""
        require_admin(user)
        conversation = await self._find(conversation_id)
        return await self._delete(conversation.id)

    async def _delete(self, conversation_id: str) -> str:
        if not await self.store.delete(conversation_id):
            raise _conversation_not_found(conversation_id)
        return conversation_id

    async def _find(self, conversation_id: str | None) -> Conversation:
        if not conversation_id:
            raise InvalidInput("Missing conversation_id field", ErrorCode.MISSING_FIELD)
        # Ids match their stored form exactly (PROTOCOL.md 2.1); anything else is not found.
        found = await self.store.get(conversation_id) if is_message_id(conversation_id) else None
        if found is None:
            raise _conversation_not_found(conversation_id)
        return found

    async def _resolve(
        self, user: User, message_ids: Sequence[str]
    ) -> list[tuple[int, MessageRef]]:
        """Each id's message ``seq`` and reference, in the given order. The first id that is
        not a UUID, or names no message ``user`` may see, fails the whole request."""
        for message_id in message_ids:
            if not _is_uuid(message_id):
                # REST refuses these with 422 first; this is the WebSocket's answer.
                raise InvalidInput("Invalid message ID format", ErrorCode.INVALID_ID)
        found = await self.store.refs_by_ids([m for m in message_ids if is_message_id(m)])
        resolved: list[tuple[int, MessageRef]] = []
        for message_id in message_ids:
            hit = found.get(message_id)
            if hit is None or not can_see(user, hit[1]):
                # Someone else's DM is "not found", as everywhere else.
                raise NotFound(f"Message {message_id} not found", ErrorCode.MESSAGE_NOT_FOUND)
            resolved.append(hit)
        return resolved
