"""Unread counts read from counters agree with a brute-force model under random operations.

Each step applies one operation to the real stores on SQLite and to a plain-Python model of
PROTOCOL.md section 7.1, then compares the O(1) counters, the unread lists and the counts.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import NewMessage, SqlMessageStore
from token_bowl_chat_server.storage.reads import SqlReadStore
from token_bowl_chat_server.storage.users import SqlUserStore


class Model:
    """Who has read what, computed the slow and obvious way."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.read: set[tuple[str, str]] = set()  # (user id, message id)

    def unread_for(self, user_id: str) -> tuple[list[str], list[str]]:
        room, direct = [], []
        for m in self.messages:
            if m.from_user_id == user_id or (user_id, m.id) in self.read:
                continue
            if m.is_room:
                room.append(m.id)
            elif m.to_user_id == user_id:
                direct.append(m.id)
        return room, direct


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counters_match_the_model(
    tmp_path: Path, seed: int, new_database: NewDatabase
) -> None:
    rng = random.Random(seed)
    db = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'model.db'}")
    await db.migrate()
    users_store, messages, reads = SqlUserStore(db), SqlMessageStore(db), SqlReadStore(db)
    users = []
    for i in range(4):
        user = User(str(uuid.uuid4()), f"u{i}", Role.MEMBER, None, None, None, None, "hint", i)
        users.append(await users_store.create(user, api_key_hash=uuid.uuid4().hex))
    model = Model()

    for now in range(1, 251):
        op = rng.random()
        user = rng.choice(users)
        if op < 0.45:
            batch = []
            for _ in range(rng.randint(1, 4)):
                sender = rng.choice(users)
                recipient = rng.choice([None, None, *users])
                batch.append(NewMessage(str(uuid.uuid4()), sender, recipient, "x", now))
            model.messages += [a.message for a in await messages.append_batch(batch)]
        elif op < 0.7 and model.messages:
            message = rng.choice(model.messages)
            if message.is_room or user.id in (message.from_user_id, message.to_user_id):
                await reads.mark_read(user.id, message, now)
                model.read.add((user.id, message.id))
        elif op < 0.8:
            room, _ = model.unread_for(user.id)
            newly = await reads.mark_room_read(user.id)
            assert sorted(n.message_id for n in newly) == sorted(room)
            model.read |= {(user.id, m) for m in room}
        elif op < 0.9:
            sender = rng.choice(users)
            _, direct = model.unread_for(user.id)
            expected = [
                m.id for m in model.messages if m.id in direct and m.from_user_id == sender.id
            ]
            newly = await reads.mark_direct_read(user.id, sender.id, now)
            assert sorted(n.message_id for n in newly) == sorted(expected)
            model.read |= {(user.id, m) for m in expected}
        else:
            room, direct = model.unread_for(user.id)
            newly = await reads.mark_all_read(user.id)
            assert sorted(n.message_id for n in newly) == sorted(room + direct)
            model.read |= {(user.id, m) for m in room + direct}

        for who in users:
            room, direct = model.unread_for(who.id)
            counts = await reads.unread_counts(who.id)
            assert (counts.room, counts.direct) == (len(room), len(direct))
            listed_room = await reads.unread_room(who.id, limit=1000, offset=0)
            listed_direct = await reads.unread_direct(who.id, limit=1000, offset=0)
            assert [m.id for m in listed_room] == room
            assert [m.id for m in listed_direct] == direct
    await db.close()
