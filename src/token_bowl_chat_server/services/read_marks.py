"""Who has read my messages: the read marks an author missed while not connected."""

from __future__ import annotations

from typing import Protocol

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.storage.read_marks import AuthorReadMarks


class ReadMarkStore(Protocol):
    async def for_author(self, author_id: str, after_seq: int, limit: int) -> AuthorReadMarks: ...


class ReadMarks:
    """Only the author's own messages are reported, and only in the shapes the live receipts
    use, so an author learns nothing here that ``read_receipt`` / ``read_up_to`` frames would
    not have told them while connected."""

    def __init__(self, store: ReadMarkStore) -> None:
        self.store = store

    async def of_my_messages(self, author: User, after_seq: int, limit: int) -> AuthorReadMarks:
        return await self.store.for_author(author.id, after_seq, limit)
