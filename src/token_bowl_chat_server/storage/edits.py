"""Edits and deletes of stored messages, each an event in the ``seq`` sequence of messages.

An edit or delete takes the next ``seq`` from the counter row, like an append, and records
itself in ``message_events``: a client resuming after ``N`` gets the messages and these events
after ``N`` in commit order. A deleted message stays as a tombstone (``deleted_at`` set,
content emptied, the content of its edit events too) so its receipts and events keep their
rows; every listing and lookup skips it (``storage/messages.NOT_DELETED``).

A delete keeps the unread counters exact (``tables.py``): the room loses one message
(``counters.room_messages``), and every user for whom it was *seen* (its author, a reader whose
room cursor passed it, a reader with a receipt for it) loses one from ``room_seen``; for the
others it simply stops being unread. A DM that was unread for its recipient leaves their
``direct_unread``.

Locks, in the order every writer takes them (PostgreSQL; SQLite has one writer at a time):
the counter row, then ``read_states`` rows, then the message row. A delete locks every reader
row it may count for before deciding who had read the message, so a mark that is under way
commits first and its receipt is seen, and a mark that comes later finds the message deleted
(``storage/reads.py`` looks after taking its reader's row).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import ColumnElement, Exists, and_, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from token_bowl_chat.protocol.models import MessageType
from token_bowl_chat_server.domain.entities import Message
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import NOT_DELETED, message_from_row, select_messages
from token_bowl_chat_server.storage.tables import (
    counters,
    message_events,
    messages,
    read_states,
    receipts,
)


class EventKind(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Found:
    """A message by id, deleted ones included (so that a second delete can say so)."""

    message: Message
    deleted: bool


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One stored edit or delete. ``message`` is the message as the event left it: for an
    edit, with the content that edit set; for a delete, as it was before."""

    seq: int
    kind: EventKind
    message: Message
    at: int  # microseconds since the epoch


class _Gone(Exception):
    """The message was deleted by a transaction that committed first: roll back."""


class SqlEditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def find(self, message_id: str) -> Found | None:
        async with self.db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select_messages()
                        .add_columns(messages.c.deleted_at)
                        .where(messages.c.id == message_id)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Found(message_from_row(row), deleted=row["deleted_at"] is not None)

    async def edit(
        self, message: Message, content: str, actor_id: str, now: int
    ) -> MessageEvent | None:
        """Replace the content. ``None`` when the message was deleted meanwhile."""
        try:
            async with self.db.write() as conn:
                seq = await _next_seq(conn, room_delta=0)
                changed = await conn.execute(
                    update(messages)
                    .where(messages.c.seq == message.seq, NOT_DELETED)
                    .values(content=content, edited_at=now)
                )
                if changed.rowcount != 1:
                    raise _Gone
                await _record(conn, seq, EventKind.EDITED, message, actor_id, content, now)
                row = (
                    (await conn.execute(select_messages().where(messages.c.seq == message.seq)))
                    .mappings()
                    .one()
                )
        except _Gone:
            return None
        return MessageEvent(seq, EventKind.EDITED, message_from_row(row), now)

    async def delete(self, message: Message, actor_id: str, now: int) -> MessageEvent | None:
        """Delete, moving the unread counters. ``None`` when it was deleted already."""
        try:
            async with self.db.write() as conn:
                seq = await _next_seq(conn, room_delta=-1 if message.is_room else 0)
                await _lock_readers(conn, message)
                changed = await conn.execute(
                    update(messages)
                    .where(messages.c.seq == message.seq, NOT_DELETED)
                    .values(deleted_at=now, content="")
                )
                if changed.rowcount != 1:
                    raise _Gone
                await _uncount(conn, message)
                await conn.execute(
                    update(message_events)
                    .where(message_events.c.message_seq == message.seq)
                    .values(content=None)
                )
                await _record(conn, seq, EventKind.DELETED, message, actor_id, None, now)
        except _Gone:
            return None
        return MessageEvent(seq, EventKind.DELETED, message, now)

    async def events_after(self, user_id: str, after_seq: int, limit: int) -> list[MessageEvent]:
        """The edits and deletes after ``after_seq`` of messages ``user_id`` can see, oldest
        first, as a resuming client needs them: an edit of a message deleted since is left
        out (its delete follows), and so is the delete of a message the client never had
        (sent after ``after_seq``, it is not replayed either)."""
        visible = or_(
            messages.c.message_type == MessageType.ROOM.value,
            messages.c.from_user_id == user_id,
            messages.c.to_user_id == user_id,
        )
        wanted = or_(
            and_(message_events.c.kind == EventKind.EDITED.value, NOT_DELETED),
            and_(message_events.c.kind == EventKind.DELETED.value, messages.c.seq <= after_seq),
        )
        query = (
            select_messages()
            .add_columns(
                message_events.c.seq.label("event_seq"),
                message_events.c.kind,
                message_events.c.content.label("event_content"),
                message_events.c.created_at.label("event_at"),
            )
            .join(message_events, message_events.c.message_seq == messages.c.seq)
            .where(message_events.c.seq > after_seq, visible, wanted)
            .order_by(message_events.c.seq)
            .limit(limit)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        found: list[MessageEvent] = []
        for row in rows:
            kind = EventKind(row["kind"])
            message = message_from_row(row)
            if kind is EventKind.EDITED:
                content = row["event_content"] or ""
                message = replace(message, content=content, edited_at=row["event_at"])
            found.append(MessageEvent(row["event_seq"], kind, message, row["event_at"]))
        return found


async def _next_seq(conn: AsyncConnection, room_delta: int) -> int:
    """Take the next ``seq``: the counter row lock, held until commit, orders this event
    against every append, edit and delete, across server processes too."""
    values = {"last_seq": counters.c.last_seq + 1}
    if room_delta:
        values["room_messages"] = counters.c.room_messages + room_delta
    result = await conn.execute(
        update(counters).where(counters.c.id == 1).values(values).returning(counters.c.last_seq)
    )
    return int(result.scalar_one())


async def _lock_readers(conn: AsyncConnection, message: Message) -> None:
    """Lock the read state rows the delete may change, in one order (by user id).

    A room message may count for everyone; a DM only for its recipient. PostgreSQL waits
    here for marks under way on those rows (SQLite ignores FOR UPDATE: it has one writer)."""
    query = select(read_states.c.user_id).order_by(read_states.c.user_id).with_for_update()
    if not message.is_room:
        if message.to_user_id is None:
            return
        query = query.where(read_states.c.user_id == message.to_user_id)
    await conn.execute(query)


def _has_receipt(seq: int) -> Exists:
    return exists().where(
        receipts.c.user_id == read_states.c.user_id, receipts.c.message_seq == seq
    )


async def _uncount(conn: AsyncConnection, message: Message) -> None:
    seq = message.seq
    if message.is_room:
        seen: ColumnElement[bool] = or_(read_states.c.room_cursor >= seq, _has_receipt(seq))
        if message.from_user_id is not None:
            seen = or_(seen, read_states.c.user_id == message.from_user_id)
        await conn.execute(
            update(read_states).where(seen).values(room_seen=read_states.c.room_seen - 1)
        )
        return
    recipient = message.to_user_id
    if recipient is None or recipient == message.from_user_id:
        return  # a DM to oneself never counts; a recipient who is gone has no counters
    await conn.execute(
        update(read_states)
        .where(
            read_states.c.user_id == recipient,
            read_states.c.direct_cursor < seq,
            ~_has_receipt(seq),
        )
        .values(direct_unread=read_states.c.direct_unread - 1)
    )


async def _record(
    conn: AsyncConnection,
    seq: int,
    kind: EventKind,
    message: Message,
    actor_id: str,
    content: str | None,
    now: int,
) -> None:
    await conn.execute(
        insert(message_events).values(
            seq=seq,
            message_seq=message.seq,
            kind=kind.value,
            actor_id=actor_id,
            content=content,
            created_at=now,
        )
    )
