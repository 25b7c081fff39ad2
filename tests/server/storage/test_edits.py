"""Edits and deletes in storage: exact unread counters, tombstones, the replayable events.

On SQLite, or on PostgreSQL with ``--database postgresql``; the race test matters there, where
marks and deletes run in concurrent transactions.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.edits import EventKind, SqlEditStore
from token_bowl_chat_server.storage.messages import NewMessage, SqlMessageStore
from token_bowl_chat_server.storage.reads import SqlReadStore
from token_bowl_chat_server.storage.users import SqlUserStore


class Stores:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = SqlUserStore(db)
        self.messages = SqlMessageStore(db)
        self.reads = SqlReadStore(db)
        self.edits = SqlEditStore(db)
        self.now = 0

    def tick(self) -> int:
        self.now += 1
        return self.now

    async def user(self, name: str) -> User:
        user = User(str(uuid.uuid4()), name, Role.MEMBER, None, None, None, None, "h", 0)
        return await self.users.create(user, api_key_hash=uuid.uuid4().hex)

    async def send(self, sender: User, to: User | None = None, content: str = "x") -> Message:
        new = NewMessage(str(uuid.uuid4()), sender, to, content, self.tick())
        (appended,) = await self.messages.append_batch([new])
        return appended.message  # type: ignore[union-attr]

    async def counts(self, *users: User) -> list[tuple[int, int]]:
        result = []
        for user in users:
            counts = await self.reads.unread_counts(user.id)
            result.append((counts.room, counts.direct))
        return result

    async def listed(self, user: User) -> tuple[int, int]:
        """Unread counts recounted from the unread lists, which read receipts, cursors and
        tombstones directly instead of the counters."""
        room = await self.reads.unread_room(user.id, 100_000, 0)
        direct = await self.reads.unread_direct(user.id, 100_000, 0)
        return len(room), len(direct)


@pytest.fixture
async def stores(tmp_path: Path, new_database: NewDatabase) -> AsyncIterator[Stores]:
    db = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'edits.db'}")
    await db.migrate()
    try:
        yield Stores(db)
    finally:
        await db.close()


async def test_a_deleted_room_message_stops_counting_for_exactly_those_who_had_it_unread(
    stores: Stores,
) -> None:
    s = stores
    author, single, cursor, both, everything, unread = [await s.user(f"u{i}") for i in range(6)]
    await s.send(author, content="before")
    doomed = await s.send(author, content="doomed")
    late = await s.user("late")  # registered after it: it starts unread for them
    await s.send(unread, content="after")
    await s.reads.mark_read(single.id, doomed, s.tick())  # a receipt above the cursor
    await s.reads.mark_room_read(cursor.id)  # the cursor passed it
    await s.reads.mark_read(both.id, doomed, s.tick())  # both a receipt and then the cursor
    await s.reads.mark_room_read(both.id)
    await s.reads.mark_all_read(everything.id)
    await s.reads.mark_read(author.id, doomed, s.tick())  # an author may mark their own
    people = (author, single, cursor, both, everything, unread, late)
    before = await s.counts(*people)
    assert before == [(1, 0), (2, 0), (0, 0), (0, 0), (0, 0), (2, 0), (3, 0)]

    event = await s.edits.delete(doomed, author.id, s.tick())

    assert event is not None and event.kind is EventKind.DELETED
    after = await s.counts(*people)
    assert after == [(1, 0), (2, 0), (0, 0), (0, 0), (0, 0), (1, 0), (2, 0)]
    for person in people:
        assert await s.listed(person) == after[people.index(person)]
    # Later messages count as before; marking everything read still ends at zero.
    await s.send(author, content="later")
    assert await s.counts(unread, cursor) == [(2, 0), (1, 0)]
    await s.reads.mark_room_read(unread.id)
    assert await s.counts(unread) == [(0, 0)]
    history, total = await s.messages.room_history(100, 0, None)
    assert "doomed" not in [m.content for m in history] and total == len(history) == 3


async def test_a_deleted_dm_leaves_the_recipients_count_only_when_it_was_unread(
    stores: Stores,
) -> None:
    s = stores
    sender, unread_to, read_to, cursor_to = [await s.user(f"d{i}") for i in range(4)]
    unread_dm = await s.send(sender, unread_to)
    read_dm = await s.send(sender, read_to)
    cursor_dm = await s.send(sender, cursor_to)
    to_self = await s.send(sender, sender)
    await s.send(sender, unread_to, content="stays")
    await s.reads.mark_read(read_to.id, read_dm, s.tick())
    await s.reads.mark_all_read(cursor_to.id)
    people = (sender, unread_to, read_to, cursor_to)
    assert await s.counts(*people) == [(0, 0), (0, 2), (0, 0), (0, 0)]

    for dm, actor in ((unread_dm, sender), (read_dm, read_to), (cursor_dm, sender)):
        assert await s.edits.delete(dm, actor.id, s.tick()) is not None
    assert await s.edits.delete(to_self, sender.id, s.tick()) is not None

    assert await s.counts(*people) == [(0, 0), (0, 1), (0, 0), (0, 0)]
    for person in people:
        assert await s.listed(person) == (await s.counts(person))[0]
    history, total = await s.messages.direct_history(sender.id, 100, 0, None)
    assert [m.content for m in history] == ["stays"] and total == 1


async def test_an_edit_changes_the_content_and_no_count(stores: Stores) -> None:
    s = stores
    author, reader = await s.user("ea"), await s.user("er")
    message = await s.send(author, content="first")
    dm = await s.send(author, reader, content="psst")
    before = await s.counts(author, reader)

    edited = await s.edits.edit(message, "second", author.id, s.tick())
    await s.edits.edit(dm, "psst!", author.id, s.tick())

    assert edited is not None and edited.message.content == "second"
    assert edited.message.edited_at == edited.at and edited.seq > dm.seq
    assert await s.counts(author, reader) == before
    stored = await s.messages.by_id(message.id)
    assert stored is not None and (stored.content, stored.edited_at) == ("second", edited.at)
    assert await s.messages.last_seq() == edited.seq + 1  # edits take seqs from the counter


async def test_a_deleted_message_refuses_a_second_delete_and_an_edit_and_is_hidden(
    stores: Stores,
) -> None:
    s = stores
    author, reader = await s.user("ga"), await s.user("gr")
    message = await s.send(author, content="secret")
    await s.edits.edit(message, "secret v2", author.id, s.tick())
    assert await s.edits.delete(message, author.id, s.tick()) is not None
    last = await s.messages.last_seq()
    counts = await s.counts(author, reader)

    assert await s.edits.delete(message, author.id, s.tick()) is None
    assert await s.edits.edit(message, "again", author.id, s.tick()) is None

    assert await s.messages.last_seq() == last  # nothing stored, no seq taken
    assert await s.counts(author, reader) == counts
    assert await s.messages.by_id(message.id) is None
    found = await s.edits.find(message.id)
    assert found is not None and found.deleted and found.message.content == ""
    assert not await s.reads.mark_read(reader.id, message, s.tick())  # a stale mark: no-op
    assert await s.counts(author, reader) == counts
    assert await s.messages.delivered_after(reader.id, 0, 100) == []


async def test_events_after_come_in_seq_order_with_only_what_the_user_can_see(
    stores: Stores,
) -> None:
    s = stores
    alice, bob, carol = await s.user("ra"), await s.user("rb"), await s.user("rc")
    kept = await s.send(alice, content="kept")
    doomed = await s.send(alice, content="doomed")
    dm = await s.send(alice, bob, content="to bob")
    cursor = await s.messages.last_seq()
    await s.edits.edit(kept, "k1", alice.id, s.tick())
    await s.edits.edit(doomed, "doomed v2", alice.id, s.tick())
    await s.edits.edit(dm, "to bob v2", alice.id, s.tick())
    await s.edits.edit(kept, "k2", alice.id, s.tick())
    fresh = await s.send(alice, content="fresh")
    await s.edits.delete(fresh, alice.id, s.tick())
    await s.edits.delete(doomed, alice.id, s.tick())

    def summary(user: User) -> list[tuple[str, str, str]]:
        return [(e.kind.value, e.message.id, e.message.content) for e in events[user.id]]

    events = {u.id: await s.edits.events_after(u.id, cursor, 100) for u in (bob, carol)}

    # Each edit carries the content it set; the edit of a message deleted since is left out
    # (its delete follows), and so is the delete of one sent after the cursor (never had).
    assert summary(bob) == [
        ("edited", kept.id, "k1"),
        ("edited", dm.id, "to bob v2"),
        ("edited", kept.id, "k2"),
        ("deleted", doomed.id, ""),
    ]
    assert summary(carol) == [
        ("edited", kept.id, "k1"),
        ("edited", kept.id, "k2"),
        ("deleted", doomed.id, ""),
    ]
    seqs = [e.seq for e in events[bob.id]]
    assert seqs == sorted(seqs) and seqs[0] > cursor
    assert [e.seq for e in await s.edits.events_after(bob.id, seqs[1], 2)] == seqs[2:]
    assert await s.edits.events_after(bob.id, seqs[-1], 100) == []


async def test_marks_racing_deletes_keep_every_counter_exact(stores: Stores) -> None:
    """Concurrent transactions on PostgreSQL (one writer at a time on SQLite): whatever order
    the marks and deletes commit in, each counter equals its recount afterwards."""
    s = stores
    rng = random.Random(9)
    people = [await s.user(f"x{i}") for i in range(5)]
    sent = []
    for i in range(40):
        sender = rng.choice(people)
        to = rng.choice([None, None, *people])
        sent.append(await s.send(sender, to, content=f"m{i}"))

    async def mark(user: User, message: Message) -> None:
        if message.is_room or user.id in (message.from_user_id, message.to_user_id):
            await s.reads.mark_read(user.id, message, s.tick())

    async def mark_direct(user: User, sender: User) -> None:
        await s.reads.mark_direct_read(user.id, sender.id, s.tick())

    async def delete(message: Message) -> None:
        await s.edits.delete(message, message.from_user_id or people[0].id, s.tick())

    for _ in range(4):
        jobs = []
        for message in rng.sample(sent, 12):
            jobs.append(delete(message))
            jobs += [mark(user, message) for user in people]
        jobs += [mark_direct(user, rng.choice(people)) for user in people]
        jobs += [s.reads.mark_room_read(rng.choice(people).id) for _ in range(2)]
        rng.shuffle(jobs)
        await asyncio.gather(*jobs)
        for person in people:
            assert (await s.counts(person))[0] == await s.listed(person)
        sent += [await s.send(rng.choice(people), rng.choice([None, *people])) for _ in range(10)]
