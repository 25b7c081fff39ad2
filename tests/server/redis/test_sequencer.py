"""The per-node sequencer: frames from several nodes, offered in any order, reach the hub in
seq order with no gap; a gap that lasts is filled from the database (real storage: SQLite, or
PostgreSQL with ``--database postgresql``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from tests.waiting import eventually
from token_bowl_chat.protocol.events import encode_event
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.realtime.audience import Audience, Dialect, Room, Users
from token_bowl_chat_server.realtime.sequencer import SeqFrame, Sequencer
from token_bowl_chat_server.services.sequence_fill import SequenceFill
from token_bowl_chat_server.storage.committed import SqlCommittedLog
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.edits import SqlEditStore
from token_bowl_chat_server.storage.messages import NewMessage, SqlMessageStore
from token_bowl_chat_server.storage.users import SqlUserStore

ROOM = Room()


class Released:
    """The hub's side: what the sequencer delivered, in order."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, str, Audience]] = []

    def __call__(self, audience: Audience, text: str, seq: int) -> None:
        self.frames.append((seq, text, audience))

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, _, _ in self.frames]


class FakeLog:
    """A database that knows some seqs, and can be made to fail."""

    def __init__(self, frames: dict[int, str], failures: int = 0) -> None:
        self.frames = frames
        self.failures = failures
        self.asked: list[tuple[int, int]] = []

    async def __call__(self, first: int, last: int) -> list[SeqFrame]:
        self.asked.append((first, last))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database down")
        return [SeqFrame(s, ROOM, t) for s, t in self.frames.items() if first <= s <= last]


async def test_frames_offered_out_of_order_are_released_in_seq_order_without_the_database() -> None:
    released, log = Released(), FakeLog({})
    sequencer = Sequencer(released, log, last_seq=10, hold=60.0)
    for seq in (13, 12, 15, 14):
        sequencer.offer(seq, ROOM, f"m{seq}")
    assert released.seqs == []
    sequencer.offer(11, ROOM, "m11")
    assert released.seqs == [11, 12, 13, 14, 15]
    assert [text for _, text, _ in released.frames] == ["m11", "m12", "m13", "m14", "m15"]
    assert log.asked == []
    sequencer.close()


async def test_a_frame_already_released_or_older_than_the_start_is_dropped() -> None:
    released = Released()
    sequencer = Sequencer(released, FakeLog({}), last_seq=5, hold=60.0)
    sequencer.offer(5, ROOM, "before the start")
    sequencer.offer(6, ROOM, "m6")
    sequencer.offer(6, ROOM, "m6 again")
    sequencer.offer(8, ROOM, "m8")
    sequencer.offer(8, ROOM, "m8 again")
    sequencer.offer(7, ROOM, "m7")
    assert [text for _, text, _ in released.frames] == ["m6", "m7", "m8"]
    assert sequencer.duplicates == 3
    sequencer.close()


async def test_a_lasting_gap_is_filled_and_a_seq_with_no_frame_is_passed_over() -> None:
    released = Released()
    log = FakeLog({2: "m2 from the database"})  # seq 3: a message deleted since
    sequencer = Sequencer(released, log, last_seq=1, hold=0.01)
    sequencer.offer(4, ROOM, "m4")
    await eventually(lambda: released.seqs == [2, 4], what=f"released {released.seqs}")
    assert log.asked == [(2, 3)]
    assert sequencer.passed_over == 1
    sequencer.offer(3, ROOM, "m3, too late")
    assert released.seqs == [2, 4]
    sequencer.close()


async def test_a_failing_database_is_tried_again_until_the_gap_is_filled() -> None:
    released = Released()
    log = FakeLog({2: "m2"}, failures=2)
    sequencer = Sequencer(released, log, last_seq=1, hold=0.01)
    sequencer.offer(3, ROOM, "m3")
    await eventually(lambda: released.seqs == [2, 3], what=f"released {released.seqs}")
    assert len(log.asked) == 3
    sequencer.close()


async def test_catch_up_reads_what_no_frame_announced() -> None:
    released = Released()
    sequencer = Sequencer(released, FakeLog({2: "m2", 3: "m3"}), last_seq=1, hold=60.0)
    sequencer.catch_up(3)
    await eventually(lambda: released.seqs == [2, 3], what=f"released {released.seqs}")
    sequencer.catch_up(3)  # nothing new: nothing asked
    await sequencer.wait_idle()
    assert released.seqs == [2, 3]
    sequencer.close()


# --- filling from real storage -------------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path, new_database: NewDatabase) -> AsyncIterator[Database]:
    database = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'seq.db'}")
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


async def _user(users: SqlUserStore, name: str) -> User:
    user = User(str(uuid.uuid4()), name, Role.MEMBER, None, None, None, None, "h", 0)
    return await users.create(user, api_key_hash=uuid.uuid4().hex)


async def _send(store: SqlMessageStore, sender: User, to: User | None, text: str) -> Message:
    (appended,) = await store.append_batch([NewMessage(str(uuid.uuid4()), sender, to, text, 1)])
    return appended.message  # type: ignore[union-attr]


async def test_a_gap_is_filled_from_the_database_with_the_frames_live_delivery_sent(
    db: Database,
) -> None:
    users, messages, edits = SqlUserStore(db), SqlMessageStore(db), SqlEditStore(db)
    alice, bob = await _user(users, "alice"), await _user(users, "bob")
    start = await messages.last_seq()
    room = await _send(messages, alice, None, "hello room")
    direct = await _send(messages, alice, bob, "hello bob")
    gone = await _send(messages, bob, None, "soon deleted")
    edited = await edits.edit(room, "hello room, edited", alice.id, 5)
    deleted = await edits.delete(gone, bob.id, 6)
    assert edited is not None and deleted is not None
    last = await _send(messages, bob, None, "the one that arrived")
    assert last.seq == start + 6  # seqs are dense: messages and events share the counter

    released = Released()
    sequencer = Sequencer(released, SequenceFill(SqlCommittedLog(db)), start, hold=0.01)
    sequencer.offer(last.seq, Room(exclude_user_id=bob.id), "live frame")
    await eventually(lambda: len(released.frames) == 5, what=f"released {released.seqs}")

    assert released.seqs == [room.seq, direct.seq, edited.seq, deleted.seq, last.seq]
    assert sequencer.passed_over == 1  # the deleted message: its delete follows
    by_seq = {seq: (text, audience) for seq, text, audience in released.frames}
    # As a resume replays it: the message as stored now (edited), then its edit event.
    now_stored = await messages.by_id(room.id)
    assert now_stored is not None
    assert by_seq[room.seq] == (
        encode_event(render.message(now_stored)),
        Room(exclude_user_id=alice.id),
    )
    assert by_seq[direct.seq][1] == Users(frozenset({bob.id}))
    assert '"hello bob"' in by_seq[direct.seq][0]
    assert '"hello room, edited"' in by_seq[edited.seq][0]
    assert by_seq[edited.seq][1] == Room(dialect=Dialect.EXTENDED)
    assert gone.id in by_seq[deleted.seq][0] and "message_deleted" in by_seq[deleted.seq][0]
    assert by_seq[last.seq][0] == "live frame"
    sequencer.close()
