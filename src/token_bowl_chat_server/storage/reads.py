"""Read state: receipts, read cursors and the counters unread counts are read from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    exists,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from token_bowl_chat.protocol.models import MessageType
from token_bowl_chat_server.domain.entities import Message, UnreadCounts
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import (
    NOT_DELETED,
    message_from_row,
    select_messages,
)
from token_bowl_chat_server.storage.tables import counters, messages, read_states, receipts


@dataclass(frozen=True, slots=True)
class NewlyRead:
    """A message the reader had not read before this call."""

    message_id: str
    author_id: str | None
    seq: int
    direct: bool


def _not_from(user_id: str) -> ColumnElement[bool]:
    return or_(messages.c.from_user_id.is_(None), messages.c.from_user_id != user_id)


def _no_receipt(user_id: str) -> ColumnElement[bool]:
    return ~exists().where(receipts.c.user_id == user_id, receipts.c.message_seq == messages.c.seq)


def _unread_room(user_id: str, cursor: Any) -> ColumnElement[bool]:
    return and_(
        messages.c.message_type == MessageType.ROOM.value,
        messages.c.seq > cursor,
        _not_from(user_id),
        _no_receipt(user_id),
        NOT_DELETED,
    )


def _unread_direct(user_id: str, cursor: Any) -> ColumnElement[bool]:
    return and_(
        messages.c.message_type == MessageType.DIRECT.value,
        messages.c.to_user_id == user_id,
        messages.c.seq > cursor,
        _not_from(user_id),
        _no_receipt(user_id),
        NOT_DELETED,
    )


# Built once: the hot path of every unread count (and of a mark-all-read with nothing unread)
# skips building the statement again; SQLAlchemy caches its compiled form.
_UNREAD_COUNTS = (
    select(counters.c.room_messages - read_states.c.room_seen, read_states.c.direct_unread)
    .select_from(counters.join(read_states, true()))
    .where(counters.c.id == 1, read_states.c.user_id == bindparam("user_id"))
)


def _cursor(column: Any, user_id: str) -> Any:
    return select(column).where(read_states.c.user_id == user_id).scalar_subquery()


class SqlReadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def unread_counts(self, user_id: str) -> UnreadCounts:
        """O(1): two counters, no scan of messages."""
        row = await self.db.read_sync(
            lambda conn: conn.execute(_UNREAD_COUNTS, {"user_id": user_id}).first()
        )
        if row is None:
            return UnreadCounts(0, 0)
        return UnreadCounts(room=int(row[0]), direct=int(row[1]))

    async def unread_room(self, user_id: str, limit: int, offset: int) -> list[Message]:
        """Unread room messages, oldest first. Scans only what lies above the read cursor."""
        where = _unread_room(user_id, _cursor(read_states.c.room_cursor, user_id))
        return await self._list(where, limit, offset)

    async def unread_direct(self, user_id: str, limit: int, offset: int) -> list[Message]:
        where = _unread_direct(user_id, _cursor(read_states.c.direct_cursor, user_id))
        return await self._list(where, limit, offset)

    async def _list(self, where: ColumnElement[bool], limit: int, offset: int) -> list[Message]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select_messages().where(where).order_by(messages.c.seq).limit(limit).offset(offset)
            )
            return [message_from_row(row) for row in rows.mappings()]

    async def mark_read(self, user_id: str, message: Message, now: int) -> bool:
        """Mark one message read. Returns True when it was not read before.

        The caller has checked that the user may see the message.
        """
        async with self.db.write() as conn:
            state = await self._state(conn, user_id)
            cursor = state["room_cursor"] if message.is_room else state["direct_cursor"]
            if message.seq <= cursor or await self._deleted(conn, message.seq):
                return False
            added = await self._insert_receipts(conn, user_id, [message.seq], now)
            if not added:
                return False
            counts = message.from_user_id != user_id and (
                message.is_room or message.to_user_id == user_id
            )
            if counts:
                await conn.execute(
                    update(read_states)
                    .where(read_states.c.user_id == user_id)
                    .values(
                        room_seen=read_states.c.room_seen + (1 if message.is_room else 0),
                        direct_unread=read_states.c.direct_unread - (0 if message.is_room else 1),
                    )
                )
            return True

    async def mark_room_read(self, user_id: str) -> list[NewlyRead]:
        """Everything in the room up to now becomes read: one cursor move, no receipts rows."""
        async with self.db.write() as conn:
            last_seq, room_total = await self._counters(conn)
            state = await self._state(conn, user_id)
            newly = await self._newly(
                conn,
                and_(_unread_room(user_id, state["room_cursor"]), messages.c.seq <= last_seq),
            )
            await conn.execute(
                update(read_states)
                .where(read_states.c.user_id == user_id)
                .values(room_cursor=last_seq, room_seen=room_total)
            )
            return newly

    async def mark_direct_read(self, user_id: str, from_user_id: str, now: int) -> list[NewlyRead]:
        """Every unread DM from one sender becomes read."""
        async with self.db.write() as conn:
            state = await self._state(conn, user_id)
            where = and_(
                _unread_direct(user_id, state["direct_cursor"]),
                messages.c.from_user_id == from_user_id,
            )
            rows = (
                await conn.execute(
                    select(messages.c.seq, messages.c.id).where(where).order_by(messages.c.seq)
                )
            ).all()
            if rows:
                await self._insert_receipts(conn, user_id, [row[0] for row in rows], now)
                await conn.execute(
                    update(read_states)
                    .where(read_states.c.user_id == user_id)
                    .values(direct_unread=read_states.c.direct_unread - len(rows))
                )
            return [NewlyRead(row[1], from_user_id, row[0], direct=True) for row in rows]

    async def mark_all_read(self, user_id: str) -> list[NewlyRead]:
        """Room and DMs up to now become read: two cursor moves."""
        async with self.db.write() as conn:
            last_seq, room_total = await self._counters(conn)
            state = await self._state(conn, user_id)
            unread = or_(
                _unread_room(user_id, state["room_cursor"]),
                _unread_direct(user_id, state["direct_cursor"]),
            )
            newly = await self._newly(conn, and_(unread, messages.c.seq <= last_seq))
            await conn.execute(
                update(read_states)
                .where(read_states.c.user_id == user_id)
                .values(
                    room_cursor=last_seq,
                    direct_cursor=last_seq,
                    room_seen=room_total,
                    direct_unread=0,
                )
            )
            return newly

    @staticmethod
    async def _newly(conn: AsyncConnection, where: ColumnElement[bool]) -> list[NewlyRead]:
        rows = await conn.execute(
            select(messages.c.id, messages.c.from_user_id, messages.c.seq, messages.c.to_user_id)
            .where(where)
            .order_by(messages.c.seq)
        )
        return [NewlyRead(row[0], row[1], row[2], direct=row[3] is not None) for row in rows]

    @staticmethod
    async def _deleted(conn: AsyncConnection, seq: int) -> bool:
        """Read after the reader's row lock: a delete that committed meanwhile is seen here
        (it locks every reader it may count for, storage/edits.py), one that comes later
        sees this mark's receipt. Either way the counters stay exact."""
        row = await conn.execute(select(messages.c.deleted_at).where(messages.c.seq == seq))
        return row.scalar_one_or_none() is not None

    @staticmethod
    async def _counters(conn: AsyncConnection) -> tuple[int, int]:
        # FOR UPDATE (PostgreSQL) orders this against concurrent appends; SQLite ignores it
        # and is already serialised by the write lock.
        row = (
            await conn.execute(
                select(counters.c.last_seq, counters.c.room_messages)
                .where(counters.c.id == 1)
                .with_for_update()
            )
        ).one()
        return int(row[0]), int(row[1])

    @staticmethod
    async def _state(conn: AsyncConnection, user_id: str) -> Any:
        return (
            (
                await conn.execute(
                    select(read_states.c.room_cursor, read_states.c.direct_cursor)
                    .where(read_states.c.user_id == user_id)
                    .with_for_update()
                )
            )
            .mappings()
            .one()
        )

    @staticmethod
    async def _insert_receipts(
        conn: AsyncConnection, user_id: str, seqs: Sequence[int], now: int
    ) -> int:
        """Insert receipts, skipping any that exist. Returns the row count the driver reports."""
        dialect = conn.dialect.name
        if dialect == "sqlite":
            stmt: Any = sqlite.insert(receipts).on_conflict_do_nothing()
        elif dialect == "postgresql":
            stmt = postgresql.insert(receipts).on_conflict_do_nothing()
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            stmt = insert(receipts)
        rows = [{"user_id": user_id, "message_seq": seq, "read_at": now} for seq in seqs]
        result = (
            await conn.execute(stmt, rows)
            if len(rows) > 1
            else await conn.execute(stmt.values(rows[0]))
        )
        return int(result.rowcount or 0)
