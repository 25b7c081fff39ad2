"""The storage layer's read state agrees with the brute-force model of tests/model/model.py.

A hypothesis state machine drives the real stores (no server, no HTTP) on SQLite, or on
PostgreSQL with ``--database postgresql``: batches of appends as the group commit makes them
(several senders, room and DMs, DMs to oneself, client message ids repeated inside a batch and
across batches), every way of marking read, and renames. After each step the O(1) counters,
the unread lists (oldest first), both histories and what each mark reported as newly read must
equal the model. tests/model/test_state_machine.py checks the same through the real server and
its clients; this one reaches the batch shapes and marks directly, and runs in seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import NewDatabase
from tests.model import model as m
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.edits import SqlEditStore
from token_bowl_chat_server.storage.messages import NewMessage, SqlMessageStore
from token_bowl_chat_server.storage.reads import SqlReadStore
from token_bowl_chat_server.storage.users import SqlUserStore

INDEX = st.integers(0, 255)
T = TypeVar("T")


def pick(data: st.DataObject, items: Sequence[T], label: str) -> T:
    item = items[data.draw(INDEX, label=label) % len(items)]
    note(f"{label}: {item!r}")
    return item


class Stores:
    """One migrated database for the whole test; each run registers users of its own."""

    def __init__(self, loop: asyncio.Runner, url: str) -> None:
        self.loop = loop
        self.db = Database(url)
        loop.run(self.db.migrate())
        self.users = SqlUserStore(self.db)
        self.messages = SqlMessageStore(self.db)
        self.reads = SqlReadStore(self.db)
        self.edits = SqlEditStore(self.db)
        self.runs = 0
        self.steps = 0


class ReadStateMachine(RuleBasedStateMachine):
    def __init__(self, stores: Stores) -> None:
        super().__init__()
        self.s = stores
        stores.runs += 1
        self.model = m.Model()
        self.entities: dict[str, User] = {}
        self.client_ids: dict[tuple[str, str], m.Message] = {}
        self.now = 0

    def run(self, coro: Any) -> Any:
        return self.s.loop.run(coro)

    def tick(self) -> int:
        self.s.steps += 1
        self.now += 1
        return self.now

    @initialize(count=st.integers(2, 4))
    def users(self, count: int) -> None:
        tag = uuid.uuid4().hex[:8]
        for i in range(count):
            user = User(
                str(uuid.uuid4()), f"s{tag}-{i}", Role.MEMBER, None, None, None, None, "h", i
            )
            self.run(self.s.users.create(user, api_key_hash=uuid.uuid4().hex))
            self.entities[user.id] = user
            self.model.add_user(m.User(user.id, user.username, key=""))
        # The room as earlier runs left it: every message of it starts unread.
        earlier, _ = self.run(self.s.messages.room_history(100_000, 0, None))
        for msg in earlier:
            self.model.add_message(
                m.Message(
                    msg.id, msg.seq, msg.from_user_id or "", msg.from_username, None, msg.content
                )
            )

    @property
    def ids(self) -> list[str]:
        return list(self.entities)

    @rule(data=st.data(), size=st.integers(1, 5))
    def append_batch(self, data: st.DataObject, size: int) -> None:
        """One group-commit transaction: room messages and DMs (to oneself too), some with a
        client message id that may repeat one in this batch or an earlier one."""
        now = self.tick()
        batch = []
        for _ in range(size):
            sender = self.entities[pick(data, self.ids, "sender")]
            to = pick(data, [None, None, *self.ids], "to")
            client_id = data.draw(st.none() | st.sampled_from(["a", "b"]), label="client id")
            recipient = self.entities[to] if to else None
            batch.append(NewMessage(str(uuid.uuid4()), sender, recipient, "x", now, client_id))
        appended = self.run(self.s.messages.append_batch(batch))
        for new, result in zip(batch, appended, strict=True):
            key = (new.sender.id, new.client_message_id or "")
            earlier = self.client_ids.get(key) if new.client_message_id else None
            if earlier is not None:
                assert (result.created, result.message.id) == (False, earlier.id)
                continue
            assert result.created
            message = m.Message(
                result.message.id,
                result.message.seq,
                new.sender.id,
                new.sender.username,
                new.recipient.id if new.recipient else None,
                new.content,
            )
            self.model.add_message(message)
            if new.client_message_id:
                self.client_ids[key] = message

    @rule(data=st.data())
    def mark_read(self, data: st.DataObject) -> None:
        now = self.tick()
        reader = pick(data, self.ids, "reader")
        visible = [msg for msg in self.model.live() if self.model.visible(reader, msg)][-30:]
        # Drawn even when there is none to pick: what earlier runs left (deleted, maybe) must
        # not change what is drawn, or hypothesis takes the run for a flaky strategy.
        index = data.draw(INDEX, label="message")
        if not visible:
            return
        message = visible[index % len(visible)]
        note(f"message: {message!r}")
        stored = self.run(self.s.messages.by_id(message.id))
        assert stored is not None
        newly = self.run(self.s.reads.mark_read(reader, stored, now))
        assert newly == self.model.mark_one(reader, message).changed

    @rule(data=st.data())
    def mark_room_read(self, data: st.DataObject) -> None:
        self.tick()
        reader = pick(data, self.ids, "reader")
        newly = self.run(self.s.reads.mark_room_read(reader))
        want = self.model.mark_room(reader).counted
        assert [n.message_id for n in newly] == [msg.id for msg in want]

    @rule(data=st.data())
    def mark_direct_read(self, data: st.DataObject) -> None:
        now = self.tick()
        reader = pick(data, self.ids, "reader")
        sender = pick(data, self.ids, "sender")
        newly = self.run(self.s.reads.mark_direct_read(reader, sender, now))
        want = self.model.mark_direct(reader, sender).counted
        assert [n.message_id for n in newly] == [msg.id for msg in want]

    @rule(data=st.data())
    def mark_all_read(self, data: st.DataObject) -> None:
        self.tick()
        reader = pick(data, self.ids, "reader")
        newly = self.run(self.s.reads.mark_all_read(reader))
        want = self.model.mark_all(reader).counted
        assert [n.message_id for n in newly] == [msg.id for msg in want]

    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        """An edit changes the content everywhere and no read state."""
        now = self.tick()
        live = self.model.live()[-30:]
        index = data.draw(INDEX, label="edited")  # drawn even when there is none to pick
        if not live:
            return
        message = live[index % len(live)]
        note(f"edited: {message!r}")
        found = self.run(self.s.edits.find(message.id))
        assert found is not None and not found.deleted
        event = self.run(self.s.edits.edit(found.message, f"e{now}", message.sender_id, now))
        assert event is not None and event.message.content == f"e{now}"
        message.content = f"e{now}"

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """A delete takes the message out of every count, list and history, for every user
        (read or not, its author too); a second delete changes nothing."""
        now = self.tick()
        live = self.model.live()[-30:]
        index = data.draw(INDEX, label="deleted")  # drawn even when there is none to pick
        if not live:
            return
        message = live[index % len(live)]
        note(f"deleted: {message!r}")
        found = self.run(self.s.edits.find(message.id))
        assert found is not None and not found.deleted
        assert self.run(self.s.edits.delete(found.message, message.sender_id, now)) is not None
        message.deleted = True
        assert self.run(self.s.edits.delete(found.message, message.sender_id, now)) is None
        assert self.run(self.s.edits.edit(found.message, "late", message.sender_id, now)) is None
        assert self.run(self.s.messages.by_id(message.id)) is None

    @rule(data=st.data())
    def rename(self, data: st.DataObject) -> None:
        """Read state is kept by user id: a new name keeps it; messages show the new name."""
        self.tick()
        user_id = pick(data, self.ids, "user")
        name = f"{self.model.users[user_id].name}r"
        updated = self.run(self.s.users.update(user_id, username=name))
        assert updated is not None
        self.entities[user_id] = updated
        self.model.users[user_id].name = name

    @invariant()
    def reads_match_the_model(self) -> None:
        if self.entities:
            self.run(self.check())

    async def check(self) -> None:
        def names(messages: Sequence[Any]) -> list[tuple[str, str, str | None, str]]:
            return [(x.id, x.from_username, x.to_username, x.content) for x in messages]

        def want(messages: Sequence[m.Message]) -> list[tuple[str, str, str | None, str]]:
            return [
                (
                    x.id,
                    self.model.name_of(x) or "",
                    self.model.name_of(x, recipient=True),
                    x.content,
                )
                for x in messages
            ]

        for user_id in self.ids:
            counts = await self.s.reads.unread_counts(user_id)
            room, direct = self.model.unread_room(user_id), self.model.unread_direct(user_id)
            assert (counts.room, counts.direct) == (len(room), len(direct))
            assert names(await self.s.reads.unread_room(user_id, 100_000, 0)) == want(room)
            assert names(await self.s.reads.unread_direct(user_id, 100_000, 0)) == want(direct)
            dms, total = await self.s.messages.direct_history(user_id, 100_000, 0, None)
            history = self.model.direct_history(user_id)[::-1]
            assert (names(dms), total) == (want(history), len(history))
        room_history, total = await self.s.messages.room_history(100_000, 0, None)
        expected = self.model.room_history()[::-1]
        assert (names(room_history), total) == (want(expected), len(expected))


def test_read_state_matches_the_model(tmp_path: Path, new_database: NewDatabase) -> None:
    with asyncio.Runner() as loop:
        stores = Stores(loop, new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        try:
            run_state_machine_as_test(
                lambda: ReadStateMachine(stores),
                settings=settings(
                    max_examples=15,
                    stateful_step_count=25,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            loop.run(stores.db.close())
    print(f"\nstorage model check: {stores.runs} runs, {stores.steps} steps")
