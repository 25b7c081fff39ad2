"""A commit whose outcome the server never learned: the database committed, then the
connection died before it said so (a PostgreSQL restart or a network cut at that instant).
The sender got ``storage_unavailable`` and retries with the same client id; the retry finds
the message stored. It was never delivered, so the retry must deliver it, once.

The lost acknowledgement is injected at the storage seam (the real store on a real database
commits, then the call fails as the driver would report a dead connection): no real
restart can hit that instant on purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import StorageUnavailable
from token_bowl_chat_server.realtime.audience import Audience, OwnCopies
from token_bowl_chat_server.services.messages import MessageService
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import Appended, NewMessage, SqlMessageStore
from token_bowl_chat_server.storage.users import SqlUserStore


class AckLostStore(SqlMessageStore):
    """Commits every batch; the next ``lose`` batches then fail as if the connection had
    died after the COMMIT reached the database."""

    lose = 0

    async def append_batch(self, batch: Sequence[NewMessage]) -> list[Appended]:
        results = await super().append_batch(batch)
        if self.lose:
            self.lose -= 1
            raise StorageUnavailable("Storage is unavailable; try again shortly")
        return results


class Recorder:
    def __init__(self) -> None:
        self.published: list[int | None] = []

    def publish(self, audience: Audience, text: str, seq: int | None = None) -> None:
        # Deliveries only: not the sender's own copies (services/own_copies.py).
        if not isinstance(audience, OwnCopies):
            self.published.append(seq)


async def test_a_retry_delivers_a_message_whose_commit_was_never_acknowledged(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    db = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'ack.db'}")
    await db.migrate()
    users = SqlUserStore(db)
    alice = await users.create(
        User(str(uuid.uuid4()), "alice", Role.MEMBER, None, None, None, None, "h", 0),
        api_key_hash=uuid.uuid4().hex,
    )
    store = AckLostStore(db)
    recorder = Recorder()
    service = MessageService(
        users, store, recorder, TypingService(users, recorder, 5.0, 2.0), max_batch=16
    )

    store.lose = 1
    with pytest.raises(StorageUnavailable):
        await service.send(alice, "committed, not acknowledged", client_message_id="c1")
    assert recorder.published == []  # nobody has seen it yet

    stored = await service.send(alice, "committed, not acknowledged", client_message_id="c1")
    assert recorder.published == [stored.seq]  # the retry delivered it
    again = await service.send(alice, "committed, not acknowledged", client_message_id="c1")
    assert again == stored
    assert recorder.published == [stored.seq]  # once: a later retry delivers nothing more
    # An ordinary idempotent retry (the first answer arrived) delivers nothing again either.
    other = await service.send(alice, "fine", client_message_id="c2")
    await service.send(alice, "fine", client_message_id="c2")
    assert recorder.published == [stored.seq, other.seq]
    assert service.stored == 2
    await db.close()
