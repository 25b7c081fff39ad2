"""The sender's reply to a send is the message exactly as it was delivered: the REST body is the
delivered JSON text itself; a retry that delivers nothing renders the stored message anew,
to the same JSON."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.conftest import NewDatabase
from token_bowl_chat.protocol.events import encode_event
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server import render
from token_bowl_chat_server.api.rest.responses import sent_message
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.realtime.audience import Audience, OwnCopies
from token_bowl_chat_server.services.messages import (
    MessageService,
    Published,
    reply_wire,
)
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.messages import Appended, SqlMessageStore
from token_bowl_chat_server.storage.users import SqlUserStore


class Deliveries:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def publish(self, audience: Audience, text: str, seq: int | None = None) -> None:
        if not isinstance(audience, OwnCopies):
            self.texts.append(text)


async def _service(
    tmp_path: Path, new_database: NewDatabase
) -> tuple[Database, MessageService, User]:
    db = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'reply.db'}")
    await db.migrate()
    users = SqlUserStore(db)
    alice = await users.create(
        User(str(uuid.uuid4()), "alice", Role.MEMBER, None, None, None, None, "h", 0),
        api_key_hash=uuid.uuid4().hex,
    )
    deliveries = Deliveries()
    typing = TypingService(users, deliveries, 5.0, 2.0)
    service = MessageService(users, SqlMessageStore(db), deliveries, typing, max_batch=64)
    return db, service, alice


async def test_the_reply_is_the_delivered_text(tmp_path: Path, new_database: NewDatabase) -> None:
    db, service, alice = await _service(tmp_path, new_database)
    try:
        await _reply_checks(service, alice)
    finally:
        await db.close()


async def _reply_checks(service: MessageService, alice: User) -> None:
    outcome = await service.send_for_reply(alice, "hello é 🎉", client_message_id="c1")
    assert isinstance(outcome, Published)
    (delivered,) = service.publisher.texts  # type: ignore[attr-defined]
    assert outcome.text == delivered
    response = sent_message(outcome)
    assert response.status_code == 201
    assert bytes(response.body) == delivered.encode()
    assert json.loads(response.body) == render.message(outcome.message).model_dump(mode="json")

    # A retry finds the stored message, delivers nothing, and replies with the same JSON.
    again = await service.send_for_reply(alice, "hello é 🎉", client_message_id="c1")
    assert isinstance(again, Appended) and not again.created
    assert service.publisher.texts == [delivered]  # type: ignore[attr-defined]
    assert bytes(sent_message(again).body) == delivered.encode()
    assert reply_wire(again) == outcome.wire


def test_a_lone_surrogate_is_replied_as_it_is_delivered() -> None:
    """The databases refuse such text, so no stored message holds one; should one, the reply
    replaces it with U+FFFD as the delivery does and as a rendered REST body would."""
    message = Message(1, "m1", "u1", "alice", None, None, False, None, None, "a\ud800b", 0)
    wire = render.message(message)
    delivered = encode_event(wire)
    replied = sent_message(Published(message, wire, delivered)).body
    rendered = sent_message(Appended(message, created=False)).body
    assert bytes(replied) == bytes(rendered) == delivered.encode()
    assert json.loads(replied)["content"] == "a\ufffdb"
