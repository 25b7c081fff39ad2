"""Who has read an author's messages, read back from the read state the marks leave.

Nothing new is stored: a bulk mark moves the reader's cursor (``read_states``), a single
mark adds a ``receipts`` row. An author's read marks are therefore, per reader, the newest
of the author's messages at or below the reader's cursor (one row per reader, found on the
``(from_user_id, seq)`` index), plus the single receipts above the cursors.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from token_bowl_chat.protocol.models import MessageType
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.tables import messages, read_states, receipts, users


@dataclass(frozen=True, slots=True)
class ReadUpTo:
    """``reader`` has read every message of the author in the scope with ``seq <= up_to``."""

    reader: str
    up_to: int


@dataclass(frozen=True, slots=True)
class SingleReceipt:
    message_id: str
    seq: int
    reader: str
    read_at: int


@dataclass(frozen=True, slots=True)
class AuthorReadMarks:
    room: list[ReadUpTo]
    direct: list[ReadUpTo]
    receipts: list[SingleReceipt]  # newest first
    more_receipts: bool  # older receipts above ``after_seq`` were left out


class SqlReadMarkStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def for_author(self, author_id: str, after_seq: int, limit: int) -> AuthorReadMarks:
        """Marks on the author's messages with ``seq > after_seq``; at most ``limit`` receipts."""
        mine = messages.alias("mine")
        room_up_to = (
            select(func.max(mine.c.seq))
            .where(
                mine.c.from_user_id == author_id,
                mine.c.message_type == MessageType.ROOM.value,
                mine.c.seq <= read_states.c.room_cursor,
                mine.c.seq > after_seq,
            )
            .scalar_subquery()
        )
        direct_up_to = (
            select(func.max(mine.c.seq))
            .where(
                mine.c.from_user_id == author_id,
                mine.c.to_user_id == read_states.c.user_id,
                mine.c.seq <= read_states.c.direct_cursor,
                mine.c.seq > after_seq,
            )
            .scalar_subquery()
        )
        readers = (
            select(users.c.username, room_up_to.label("room"), direct_up_to.label("direct"))
            .select_from(read_states.join(users, users.c.id == read_states.c.user_id))
            .where(
                read_states.c.user_id != author_id,
                or_(
                    read_states.c.room_cursor > after_seq,
                    read_states.c.direct_cursor > after_seq,
                ),
            )
        )
        # Receipts the cursor of their reader does not cover already.
        above_cursor = or_(
            and_(messages.c.to_user_id.is_(None), messages.c.seq > read_states.c.room_cursor),
            and_(
                messages.c.to_user_id.is_not(None),
                messages.c.seq > read_states.c.direct_cursor,
            ),
        )
        singles = (
            select(messages.c.id, messages.c.seq, users.c.username, receipts.c.read_at)
            .select_from(
                receipts.join(messages, messages.c.seq == receipts.c.message_seq)
                .join(users, users.c.id == receipts.c.user_id)
                .join(read_states, read_states.c.user_id == receipts.c.user_id)
            )
            .where(
                messages.c.from_user_id == author_id,
                messages.c.seq > after_seq,
                messages.c.deleted_at.is_(None),
                receipts.c.user_id != author_id,
                above_cursor,
            )
            .order_by(messages.c.seq.desc(), users.c.username)
            .limit(limit + 1)
        )
        async with self.db.read() as conn:
            reader_rows = (await conn.execute(readers)).all()
            receipt_rows = (await conn.execute(singles)).all()
        room = [ReadUpTo(row[0], int(row[1])) for row in reader_rows if row[1] is not None]
        direct = [ReadUpTo(row[0], int(row[2])) for row in reader_rows if row[2] is not None]
        found = [
            SingleReceipt(row[0], int(row[1]), row[2], int(row[3])) for row in receipt_rows[:limit]
        ]
        return AuthorReadMarks(
            room=sorted(room, key=lambda mark: mark.reader),
            direct=sorted(direct, key=lambda mark: mark.reader),
            receipts=found,
            more_receipts=len(receipt_rows) > limit,
        )
