"""The bot-turn cap in the store: judged in ``seq`` order inside the transaction that appends,
so a refused message fails alone and the cap is exact under concurrent writers (on
PostgreSQL, writers with engines of their own, as separate server processes have)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import delete, select

from tests.conftest import NewDatabase
from tests.waiting import eventually
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import BotTurnLimitReached, NotAuthenticated, NotFound
from token_bowl_chat_server.realtime.audience import Audience
from token_bowl_chat_server.services.messages import MessageService
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import (
    Appended,
    NewMessage,
    Refused,
    SqlMessageStore,
)
from token_bowl_chat_server.storage.tables import counters
from token_bowl_chat_server.storage.tables import messages as messages_table
from token_bowl_chat_server.storage.tables import users as users_table
from token_bowl_chat_server.storage.users import SqlUserStore


async def _database(url: str) -> Database:
    db = Database(url)
    await db.migrate()
    return db


async def _user(db: Database, name: str, role: Role) -> User:
    user = User(str(uuid.uuid4()), name, role, None, None, None, None, "h", 0)
    return await SqlUserStore(db).create(user, api_key_hash=uuid.uuid4().hex)


def _new(sender: User, content: str, to: User | None = None, cid: str | None = None) -> NewMessage:
    return NewMessage(str(uuid.uuid4()), sender, to, content, 1, cid)


async def _stored_contents(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(select(messages_table.c.content).order_by(messages_table.c.seq))
        return list(rows.scalars())


async def _streak(db: Database) -> int:
    async with db.read() as conn:
        value = await conn.execute(select(counters.c.bot_streak).where(counters.c.id == 1))
        return int(value.scalar_one())


async def test_one_batch_is_judged_in_seq_order_and_refused_messages_fail_alone(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    db = await _database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    human = await _user(db, "human", Role.MEMBER)
    b1 = await _user(db, "b1", Role.BOT)
    b2 = await _user(db, "b2", Role.BOT)
    store = SqlMessageStore(db, bot_turn_cap=2)

    batch = [
        _new(b1, "1"),
        _new(b2, "2"),
        _new(b1, "3 refused", cid="c3"),
        _new(human, "dm", to=b1),  # a DM is not a turn in the room
        _new(b1, "3 retried in the batch", cid="c3"),  # the same send: refused with it
        _new(human, "human"),
        _new(b2, "4"),
        _new(b1, "5"),
        _new(b2, "6 refused"),
    ]
    results = await store.append_batch(batch)

    refused = [i for i, r in enumerate(results) if isinstance(r, Refused)]
    assert refused == [2, 4, 8]
    for i in refused:
        error = results[i].error  # type: ignore[union-attr]
        assert isinstance(error, BotTurnLimitReached) and error.code == "bot_turn_limit"
    stored = [r for r in results if isinstance(r, Appended)]
    assert [r.message.seq for r in stored] == [1, 2, 3, 4, 5, 6]  # no gaps for refusals
    assert await _stored_contents(db) == ["1", "2", "dm", "human", "4", "5"]
    assert [r.message.from_user_bot for r in stored] == [True, True, False, False, True, True]
    assert await _streak(db) == 2

    # The streak carries over to the next transaction; a human resets it.
    assert isinstance((await store.append_batch([_new(b1, "7")]))[0], Refused)
    later = await store.append_batch([_new(human, "again"), _new(b1, "8"), _new(b2, "9")])
    assert all(isinstance(r, Appended) for r in later)
    assert await _streak(db) == 2
    await db.close()


async def test_without_a_cap_the_streak_is_still_counted(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    """Turning the cap on later (a restart with a new setting) judges from the truth."""
    url = new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'nocap.db'}"
    db = await _database(url)
    human = await _user(db, "human", Role.MEMBER)
    bot = await _user(db, "bot", Role.BOT)
    uncapped = SqlMessageStore(db, bot_turn_cap=0)
    await uncapped.append_batch([_new(bot, "a"), _new(human, "h")])
    await uncapped.append_batch([_new(bot, str(i)) for i in range(4)])
    assert await _streak(db) == 4
    capped = SqlMessageStore(db, bot_turn_cap=5)
    results = await capped.append_batch([_new(bot, "x"), _new(bot, "y")])
    assert [type(r) for r in results] == [Appended, Refused]
    await db.close()


async def test_the_cap_is_exact_under_concurrent_writers(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    """Many bots send at once through several writers. On PostgreSQL each writer has its own
    engine, as separate server processes on one database do; on SQLite (one process per
    database) they share one. Exactly ``cap`` bot messages are stored before a human's
    message, and exactly ``cap`` after it."""
    url = new_database(tmp_path)
    shared = url is None
    url = url or f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    first = await _database(url)
    databases = [first] + [first if shared else Database(url) for _ in range(2)]
    human = await _user(first, "human", Role.MEMBER)
    bots = [await _user(first, f"bot{i}", Role.BOT) for i in range(6)]
    cap = 7
    stores = [SqlMessageStore(db, bot_turn_cap=cap) for db in databases]

    async def wave(tag: str) -> list[Appended | Refused]:
        sends = [
            stores[i % len(stores)].append_batch([_new(bots[i % len(bots)], f"{tag}{i}")])
            for i in range(40)
        ]
        return [r for results in await asyncio.gather(*sends) for r in results]

    try:
        results = await wave("a")
        assert sum(isinstance(r, Appended) for r in results) == cap
        assert sum(isinstance(r, Refused) for r in results) == 40 - cap
        await stores[1].append_batch([_new(human, "a human")])
        results = await wave("b")
        assert sum(isinstance(r, Appended) for r in results) == cap
        contents = await _stored_contents(first)
        assert len(contents) == 2 * cap + 1 and contents[cap] == "a human"
        assert await _streak(first) == cap
    finally:
        for db in {id(db): db for db in databases}.values():
            await db.close()


class _Recorder:
    def __init__(self) -> None:
        self.published: list[int | None] = []

    def publish(self, audience: Audience, text: str, seq: int | None = None) -> None:
        self.published.append(seq)


class _GatedStore(SqlMessageStore):
    """Holds the first batch at a gate so later sends share the next group commit."""

    def __init__(self, db: Database, bot_turn_cap: int) -> None:
        super().__init__(db, bot_turn_cap)
        self.gate: asyncio.Event | None = None
        self.batches: list[int] = []

    async def append_batch(self, batch: Sequence[NewMessage]) -> list[Appended | Refused]:
        self.batches.append(len(batch))
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        return await super().append_batch(batch)


async def test_a_refused_send_fails_alone_in_a_shared_group_commit(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    """Through the service: the refused sender gets BotTurnLimitReached, everyone else in the
    same group commit is stored and delivered, and the commit is not split to find out."""
    db = await _database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    human = await _user(db, "human", Role.MEMBER)
    b1 = await _user(db, "b1", Role.BOT)
    b2 = await _user(db, "b2", Role.BOT)
    store = _GatedStore(db, bot_turn_cap=2)
    recorder = _Recorder()
    users = SqlUserStore(db)
    service = MessageService(
        users, store, recorder, TypingService(users, recorder, 5.0, 2.0), max_batch=256
    )

    gate = store.gate = asyncio.Event()
    first = asyncio.create_task(service.send(human, "first"))
    await eventually(lambda: len(store.batches) == 1)
    plan = [(b1, "a"), (b2, "b"), (b1, "refused"), (human, "human"), (b2, "c")]
    sends = [asyncio.create_task(service.send(user, text)) for user, text in plan]
    await eventually(lambda: len(service._writer._pending) == len(plan))
    gate.set()
    results = await asyncio.gather(first, *sends, return_exceptions=True)

    assert store.batches == [1, len(plan)]  # they shared one commit, which was not split
    assert service.commit_splits == 0
    assert isinstance(results[3], BotTurnLimitReached)
    stored = [r for i, r in enumerate(results) if i != 3]
    assert all(not isinstance(r, BaseException) for r in stored), results
    assert [m.content for m in stored] == ["first", "a", "b", "human", "c"]  # type: ignore[union-attr]
    # Each stored message delivered once, in seq order (pushes without a seq, such as the
    # sender's own copies, are not deliveries); the refused one never.
    delivered = [seq for seq in recorder.published if seq is not None]
    assert delivered == [m.seq for m in stored]  # type: ignore[union-attr]
    await db.close()


async def test_a_sender_or_recipient_deleted_meanwhile_fails_only_its_message(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    """A bot deleted (or an account removed) between its send's checks and the commit: the
    message breaks a foreign key. It fails alone, as NotAuthenticated for a vanished sender
    and NotFound for a vanished recipient, never as an internal error; the others in the same
    group commit are stored."""
    db = await _database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'fk.db'}")
    human = await _user(db, "human", Role.MEMBER)
    doomed_bot = await _user(db, "doomed", Role.BOT)
    doomed_reader = await _user(db, "reader", Role.MEMBER)
    store = _GatedStore(db, bot_turn_cap=0)
    recorder = _Recorder()
    users = SqlUserStore(db)
    service = MessageService(
        users, store, recorder, TypingService(users, recorder, 5.0, 2.0), max_batch=256
    )
    gate = store.gate = asyncio.Event()
    first = asyncio.create_task(service.send(human, "first"))
    await eventually(lambda: len(store.batches) == 1)
    plan = [
        (human, "a", None),
        (doomed_bot, "from a deleted bot", None),
        (human, "to a deleted reader", doomed_reader.username),
        (human, "b", None),
    ]
    sends = [asyncio.create_task(service.send(u, text, to)) for u, text, to in plan]
    await eventually(lambda: len(service._writer._pending) == len(plan))
    async with db.write() as conn:  # both accounts go while the sends wait for the writer
        await conn.execute(delete(users_table).where(users_table.c.id == doomed_bot.id))
        await conn.execute(delete(users_table).where(users_table.c.id == doomed_reader.id))
    gate.set()
    results = await asyncio.gather(first, *sends, return_exceptions=True)

    assert isinstance(results[2], NotAuthenticated), results
    assert isinstance(results[3], NotFound) and results[3].code == "user_not_found", results
    assert [r.content for i, r in enumerate(results) if i not in (2, 3)] == ["first", "a", "b"]  # type: ignore[union-attr]
    assert await _stored_contents(db) == ["first", "a", "b"]
    await db.close()
