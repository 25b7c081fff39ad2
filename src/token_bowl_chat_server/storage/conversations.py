"""Conversations and the messages they list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import MessageType
from token_bowl_chat_server.domain.conversations import Conversation, MessageRef
from token_bowl_chat_server.domain.errors import NotFound
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import NOT_DELETED
from token_bowl_chat_server.storage.tables import (
    conversation_messages,
    conversations,
    messages,
    users,
)

_CONVERSATION_COLUMNS = (
    conversations.c.id,
    conversations.c.title,
    conversations.c.description,
    conversations.c.created_by_id,
    # The creator's current name; the stored one once the account is gone.
    func.coalesce(users.c.username, conversations.c.created_by_username).label(
        "created_by_username"
    ),
    conversations.c.created_at,
)
_REF_COLUMNS = (
    messages.c.id,
    messages.c.message_type,
    messages.c.from_user_id,
    messages.c.to_user_id,
)
_WITH_CREATOR = conversations.outerjoin(users, users.c.id == conversations.c.created_by_id)
# Newest first; the id orders conversations created in the same microsecond.
_NEWEST_FIRST = (conversations.c.created_at.desc(), conversations.c.id.desc())


@dataclass(frozen=True, slots=True)
class NewConversation:
    id: str
    title: str | None
    description: str | None
    created_by_id: str
    created_by_username: str
    created_at: int
    message_seqs: Sequence[int]


def _vanished() -> NotFound:
    # A listed message was deleted between the caller's check and this write.
    return NotFound("A message of the conversation no longer exists", ErrorCode.MESSAGE_NOT_FOUND)


class SqlConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def refs_by_ids(self, message_ids: Sequence[str]) -> dict[str, tuple[int, MessageRef]]:
        """The stored, not deleted, messages among ``message_ids``: each id's ``seq`` and
        what visibility depends on (not the content, which a list of 1000 ids does not need)."""
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(*_REF_COLUMNS, messages.c.seq).where(messages.c.id.in_(wanted), NOT_DELETED)
            )
            return {row["id"]: (row["seq"], _ref(row)) for row in rows.mappings()}

    async def create(self, new: NewConversation) -> None:
        """Raises NotFound when a listed message was removed meanwhile (nothing is stored)."""
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(conversations).values(
                        id=new.id,
                        title=new.title,
                        description=new.description,
                        created_by_id=new.created_by_id,
                        created_by_username=new.created_by_username,
                        created_at=new.created_at,
                    )
                )
                await self._insert_entries(conn, new.id, new.message_seqs)
        except IntegrityError:
            raise _vanished() from None

    async def update(
        self, conversation_id: str, values: dict[str, Any], message_seqs: Sequence[int] | None
    ) -> bool:
        """Set ``values`` and, unless ``None``, replace the list with ``message_seqs``, in one
        transaction. False when the conversation no longer exists."""
        try:
            async with self.db.write() as conn:
                this = conversations.c.id == conversation_id
                if values:
                    result = await conn.execute(update(conversations).where(this).values(values))
                    exists = result.rowcount > 0
                else:
                    # Lock the row (PostgreSQL), so a concurrent delete waits for this list.
                    row = await conn.execute(
                        select(conversations.c.id).where(this).with_for_update()
                    )
                    exists = row.first() is not None
                if not exists:
                    return False
                if message_seqs is not None:
                    await conn.execute(
                        delete(conversation_messages).where(
                            conversation_messages.c.conversation_id == conversation_id
                        )
                    )
                    await self._insert_entries(conn, conversation_id, message_seqs)
        except IntegrityError:
            raise _vanished() from None
        return True

    @staticmethod
    async def _insert_entries(
        conn: AsyncConnection, conversation_id: str, message_seqs: Sequence[int]
    ) -> None:
        if not message_seqs:
            return
        await conn.execute(
            insert(conversation_messages),
            [
                {"conversation_id": conversation_id, "position": position, "message_seq": seq}
                for position, seq in enumerate(message_seqs)
            ],
        )

    async def delete(self, conversation_id: str) -> bool:
        """False when there was no such conversation. Its entries go with it (cascade)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(conversations).where(conversations.c.id == conversation_id)
            )
            return bool(result.rowcount)

    async def get(self, conversation_id: str) -> Conversation | None:
        async with self.db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(*_CONVERSATION_COLUMNS)
                        .select_from(_WITH_CREATOR)
                        .where(conversations.c.id == conversation_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            refs = await self._refs(conn, [conversation_id])
        return _conversation(row, refs)

    async def page(
        self, created_by_id: str | None, limit: int, offset: int
    ) -> tuple[list[Conversation], int]:
        """Newest first, with the total: one creator's, or everyone's when ``None``."""
        where: ColumnElement[bool] | None = (
            None if created_by_id is None else conversations.c.created_by_id == created_by_id
        )
        count = select(func.count()).select_from(conversations)
        query = select(*_CONVERSATION_COLUMNS).select_from(_WITH_CREATOR)
        if where is not None:
            count = count.where(where)
            query = query.where(where)
        async with self.db.read() as conn:
            total = int((await conn.execute(count)).scalar_one())
            rows = list(
                (await conn.execute(query.order_by(*_NEWEST_FIRST).limit(limit).offset(offset)))
                .mappings()
                .all()
            )
            refs = await self._refs(conn, [row["id"] for row in rows])
        return [_conversation(row, refs) for row in rows], total

    @staticmethod
    async def _refs(
        conn: AsyncConnection, conversation_ids: Sequence[str]
    ) -> dict[str, list[MessageRef]]:
        """The listed messages of each conversation, in order; deleted ones left out."""
        if not conversation_ids:
            return {}
        rows = await conn.execute(
            select(conversation_messages.c.conversation_id, *_REF_COLUMNS)
            .select_from(
                conversation_messages.join(
                    messages, messages.c.seq == conversation_messages.c.message_seq
                )
            )
            .where(conversation_messages.c.conversation_id.in_(conversation_ids), NOT_DELETED)
            .order_by(conversation_messages.c.conversation_id, conversation_messages.c.position)
        )
        found: dict[str, list[MessageRef]] = {}
        for row in rows.mappings():
            found.setdefault(row["conversation_id"], []).append(_ref(row))
        return found


def _ref(row: RowMapping) -> MessageRef:
    return MessageRef(
        message_id=row["id"],
        message_type=MessageType(row["message_type"]),
        from_user_id=row["from_user_id"],
        to_user_id=row["to_user_id"],
    )


def _conversation(row: RowMapping, refs: dict[str, list[MessageRef]]) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        created_by_id=row["created_by_id"],
        created_by_username=row["created_by_username"],
        created_at=row["created_at"],
        messages=tuple(refs.get(row["id"], ())),
    )
