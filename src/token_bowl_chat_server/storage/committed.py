"""Everything committed in a range of ``seq``: messages and edit/delete events alike.

The sequencer (``realtime/sequencer.py``) reads this when a seq has not reached its node
live, to deliver what the missing frame would have carried.
"""

from __future__ import annotations

from dataclasses import replace

from token_bowl_chat_server.domain.entities import Message
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.edits import EventKind, MessageEvent
from token_bowl_chat_server.storage.messages import NOT_DELETED, message_from_row, select_messages
from token_bowl_chat_server.storage.tables import message_events, messages


class SqlCommittedLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def between(self, first: int, last: int) -> list[Message | MessageEvent]:
        """The messages (not deleted since) and events with ``first <= seq <= last``, in seq
        order. An edit of a message deleted since is left out: its delete is in the log."""
        in_range = messages.c.seq.between(first, last)
        event_query = (
            select_messages()
            .add_columns(
                messages.c.deleted_at,
                message_events.c.seq.label("event_seq"),
                message_events.c.kind,
                message_events.c.content.label("event_content"),
                message_events.c.created_at.label("event_at"),
            )
            .join(message_events, message_events.c.message_seq == messages.c.seq)
            .where(message_events.c.seq.between(first, last))
        )
        async with self.db.read() as conn:
            message_rows = (
                (await conn.execute(select_messages().where(in_range, NOT_DELETED)))
                .mappings()
                .all()
            )
            event_rows = (await conn.execute(event_query)).mappings().all()
        found: list[Message | MessageEvent] = [message_from_row(row) for row in message_rows]
        for row in event_rows:
            kind = EventKind(row["kind"])
            message = message_from_row(row)
            if kind is EventKind.EDITED:
                if row["deleted_at"] is not None:
                    continue
                message = replace(
                    message, content=row["event_content"] or "", edited_at=row["event_at"]
                )
            found.append(MessageEvent(row["event_seq"], kind, message, row["event_at"]))
        found.sort(key=lambda item: item.seq)
        return found
