"""The group commit against a real database: one bad message fails only its own sender, and
slow readers cannot starve the writer of a connection.

A bad row is injected at the storage layer (input validation keeps clients from producing
one): the store's insert fails inside the shared transaction whenever the batch holds the
poisoned content, as a row the database refuses would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from tests.conftest import NewDatabase
from tests.waiting import eventually
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Audience, OwnCopies
from token_bowl_chat_server.services.messages import MessageService
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import Appended, NewMessage, SqlMessageStore
from token_bowl_chat_server.storage.reads import SqlReadStore
from token_bowl_chat_server.storage.tables import messages as messages_table
from token_bowl_chat_server.storage.users import SqlUserStore

POISON = "poison: the database refuses this row"


class PoisonedStore(SqlMessageStore):
    """The real store, except that inserting the poisoned content fails inside the
    transaction (which rolls back). The first batch can be held at a gate, so later sends
    queue up behind it and share the next group commit."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.gate: asyncio.Event | None = None
        self.batches: list[list[str]] = []

    async def append_batch(self, batch: Sequence[NewMessage]) -> list[Appended]:
        self.batches.append([new.content for new in batch])
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        return await super().append_batch(batch)

    @staticmethod
    def _insert(conn: Connection, fresh: Sequence[NewMessage], seqs: Sequence[int]) -> None:
        SqlMessageStore._insert(conn, fresh, seqs)
        if any(new.content == POISON for new in fresh):
            raise UnicodeEncodeError("utf-8", POISON, 0, 1, "surrogates not allowed")


class Recorder:
    def __init__(self) -> None:
        self.published: list[int | None] = []

    def publish(self, audience: Audience, text: str, seq: int | None = None) -> None:
        # Deliveries only: not the sender's own copies (services/own_copies.py).
        if not isinstance(audience, OwnCopies):
            self.published.append(seq)


async def _database(tmp_path: Path, new_database: NewDatabase, name: str) -> Database:
    db = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / name}")
    await db.migrate()
    return db


async def _users(db: Database, count: int) -> list[User]:
    store = SqlUserStore(db)
    made = []
    for i in range(count):
        user = User(str(uuid.uuid4()), f"u{i}", Role.MEMBER, None, None, None, None, "h", i)
        made.append(await store.create(user, api_key_hash=uuid.uuid4().hex))
    return made


async def test_a_poisoned_message_fails_only_its_sender_in_a_shared_group_commit(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    db = await _database(tmp_path, new_database, "poison.db")
    users = await _users(db, 4)
    store = PoisonedStore(db)
    recorder = Recorder()
    typing = TypingService(SqlUserStore(db), recorder, 5.0, 2.0)
    service = MessageService(SqlUserStore(db), store, recorder, typing, max_batch=256)

    # The first send holds the writer; everything sent meanwhile shares the next flush.
    gate = store.gate = asyncio.Event()
    first = asyncio.create_task(service.send(users[0], "first"))
    await eventually(lambda: len(store.batches) == 1)
    plan = [
        (users[1], "a", None),
        (users[2], "b", "cid-b"),
        (users[3], POISON, None),
        (users[1], "c", None),
        (users[2], "b again", "cid-b"),  # a retry of "b": must return b, not store twice
        (users[0], "d", "cid-d"),
    ]
    sends = [asyncio.create_task(service.send(u, text, None, cid)) for u, text, cid in plan]
    await eventually(lambda: len(service._writer._pending) == len(plan))
    gate.set()
    results = await asyncio.gather(first, *sends, return_exceptions=True)

    assert len(store.batches[1]) == len(plan), store.batches  # they did share one commit
    first_msg, a, b, poisoned, c, b_again, d = results
    assert isinstance(poisoned, UnicodeEncodeError)
    stored = [first_msg, a, b, c, d]
    for result in stored:
        assert not isinstance(result, BaseException), results
    assert b_again == b  # idempotent across the retry of the batch
    seqs = [m.seq for m in stored]  # type: ignore[union-attr]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # commit order = send order
    assert [m.content for m in stored] == ["first", "a", "b", "c", "d"]  # type: ignore[union-attr]
    assert recorder.published == seqs  # each delivered once, in seq order
    assert service.commit_splits >= 1  # counted for /metrics

    async with db.read() as conn:
        rows = (await conn.execute(select(messages_table.c.content))).scalars().all()
        assert sorted(rows) == sorted(["first", "a", "b", "c", "d"])
    counts = await SqlReadStore(db).unread_counts(users[1].id)
    assert counts.room == 3  # first, b, d from others; a and c are u1's own
    # A later send carries on normally.
    assert (await service.send(users[3], "after")).seq == max(seqs) + 1
    await db.close()


async def test_the_group_commit_gets_a_connection_while_slow_reads_hold_every_pooled_one(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    """Readers holding every connection of the read pool (slow history queries under load)
    must not make the writer wait for one: it would time out and fail a whole batch."""
    db = await _database(tmp_path, new_database, "pool.db")
    users = await _users(db, 2)
    store = SqlMessageStore(db)
    release = asyncio.Event()
    holding = 0

    async def slow_read() -> None:
        nonlocal holding
        async with db.read() as conn:
            await conn.execute(select(func.count()).select_from(messages_table))
            holding += 1
            await release.wait()

    pool = db.engine.pool
    capacity = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    readers = [asyncio.create_task(slow_read()) for _ in range(capacity + 5)]
    try:
        await eventually(lambda: holding == capacity, timeout=30, what="readers hold the pool")
        async with asyncio.timeout(10):  # the pool's own wait would be 30 s
            appended = await store.append_batch(
                [NewMessage(str(uuid.uuid4()), users[0], None, "while reads are slow", 1)]
            )
        assert appended[0].created
    finally:
        release.set()
        await asyncio.gather(*readers)
        await db.close()
