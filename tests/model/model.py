"""A brute-force model of the chat: who exists, what was said, who has read what.

Every answer is recomputed from the full message list and the set of (reader, message) pairs
on each question: no counters, no cursors, nothing cached, so the model cannot share a bug
with the server's O(1) bookkeeping (read cursors, ``room_seen``, ``direct_unread``). The rules
are PROTOCOL.md section 7.1 plus our extensions (docs/protocol-extensions.md): read state is
kept per user id, so a rename keeps it; DMs are visible to their two parties only; a DM to
oneself is never unread.

Edits and deletes: a delete sets ``Message.deleted`` (every question goes through
:meth:`Model.live`, so a deleted message stops counting, listing and being visible at once),
and an edit replaces ``Message.content`` (every rendering reads it from here). Both state
machines (test_state_machine.py through the server, tests/server/storage/
test_unread_model.py on the stores) have rules for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROOM_DESCRIPTION = "This is a message for the fantasy league's group chat."


@dataclass
class User:
    id: str
    name: str
    key: str
    viewer: bool = False
    old_names: list[str] = field(default_factory=list)
    old_keys: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # what a failing example prints: no keys
        return f"User({self.name!r}{', viewer' if self.viewer else ''})"


@dataclass
class Message:
    id: str
    seq: int
    sender_id: str
    sender_name: str  # as rendered when the sender is not a user of the model (earlier runs)
    recipient_id: str | None  # None: a room message
    content: str
    deleted: bool = False

    @property
    def is_room(self) -> bool:
        return self.recipient_id is None


@dataclass(frozen=True)
class Marked:
    """What one mark changed: the messages it newly read (for the reader's counts, ``counted``)
    and whether the server saw anything new at all (it then pushes the reader's counts)."""

    counted: list[Message]
    changed: bool


class Model:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.messages: list[Message] = []  # seq order
        # (user id, message id): everything the user has marked, own messages included; the
        # server records those too (a receipt, or a read cursor that passed them).
        self.read: set[tuple[str, str]] = set()

    # ---- who -------------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        self.users[user.id] = user

    def by_name(self, name: str) -> User | None:
        return next((u for u in self.users.values() if u.name == name), None)

    def name_of(self, message: Message, recipient: bool = False) -> str | None:
        user_id = message.recipient_id if recipient else message.sender_id
        if user_id is None:
            return None
        user = self.users.get(user_id)
        if user is not None:
            return user.name
        return None if recipient else message.sender_name

    def taken(self, name: str) -> bool:
        return self.by_name(name) is not None

    # ---- what ------------------------------------------------------------------------------

    def add_message(self, message: Message) -> None:
        self.messages.append(message)
        self.messages.sort(key=lambda m: m.seq)

    def by_id(self, message_id: str) -> Message | None:
        return next((m for m in self.live() if m.id == message_id), None)

    def live(self) -> list[Message]:
        return [m for m in self.messages if not m.deleted]

    @staticmethod
    def visible(user_id: str, message: Message) -> bool:
        return message.is_room or user_id in (message.sender_id, message.recipient_id)

    @staticmethod
    def counts_for(user_id: str, message: Message) -> bool:
        """Whether ``message`` can be unread for the user (PROTOCOL.md section 7.1)."""
        if message.sender_id == user_id:
            return False
        return message.is_room or message.recipient_id == user_id

    def unread_room(self, user_id: str) -> list[Message]:
        return [
            m
            for m in self.live()
            if m.is_room and self.counts_for(user_id, m) and (user_id, m.id) not in self.read
        ]

    def unread_direct(self, user_id: str) -> list[Message]:
        return [
            m
            for m in self.live()
            if not m.is_room and self.counts_for(user_id, m) and (user_id, m.id) not in self.read
        ]

    def counts(self, user_id: str) -> dict[str, int]:
        room, direct = len(self.unread_room(user_id)), len(self.unread_direct(user_id))
        return {
            "unread_room_messages": room,
            "unread_direct_messages": direct,
            "total_unread": room + direct,
        }

    def room_history(self) -> list[Message]:
        return [m for m in self.live() if m.is_room]

    def direct_history(self, user_id: str) -> list[Message]:
        return [m for m in self.live() if not m.is_room and self.visible(user_id, m)]

    def delivered_to(self, message: Message) -> list[str]:
        """The users whose connections live delivery sends the message to."""
        if message.is_room:
            return [uid for uid in self.users if uid != message.sender_id]
        assert message.recipient_id is not None
        return [message.recipient_id] if message.recipient_id in self.users else []

    # ---- marking ---------------------------------------------------------------------------

    def mark_one(self, user_id: str, message: Message) -> Marked:
        """The caller has checked the user may see the message."""
        new = (user_id, message.id) not in self.read
        counted = [message] if new and self.counts_for(user_id, message) else []
        self.read.add((user_id, message.id))
        return Marked(counted, changed=new)

    def _mark_many(self, user_id: str, which: list[Message], unread: list[Message]) -> Marked:
        self.read |= {(user_id, m.id) for m in which}
        return Marked(unread, changed=bool(unread))

    def mark_room(self, user_id: str) -> Marked:
        """Everything in the room so far, own messages included (the read cursor moves)."""
        return self._mark_many(user_id, self.room_history(), self.unread_room(user_id))

    def mark_all(self, user_id: str) -> Marked:
        everything = [m for m in self.live() if self.visible(user_id, m)]
        unread = sorted(
            self.unread_room(user_id) + self.unread_direct(user_id), key=lambda m: m.seq
        )
        return self._mark_many(user_id, everything, unread)

    def mark_direct(self, user_id: str, sender_id: str) -> Marked:
        unread = [m for m in self.unread_direct(user_id) if m.sender_id == sender_id]
        return self._mark_many(user_id, unread, unread)

    # ---- rendering -------------------------------------------------------------------------

    def render(self, message: Message) -> dict[str, Any]:
        """The fields of a ``MessageResponse`` the model decides, names as they are now."""
        sender = self.name_of(message)
        recipient = self.name_of(message, recipient=True)
        return {
            "id": message.id,
            "seq": message.seq,
            "from_user_id": message.sender_id,
            "from_username": sender,
            "to_user_id": message.recipient_id,
            "to_username": recipient,
            "content": message.content,
            "message_type": "room" if message.is_room else "direct",
            "description": (
                ROOM_DESCRIPTION
                if message.is_room
                else f"This is a direct message from {sender} to {recipient}."
            ),
        }


RENDERED_FIELDS = tuple(Model().render(Message("i", 1, "s", "n", None, "c")))


def rendered(frame: dict[str, Any]) -> dict[str, Any]:
    """The fields of a server's ``MessageResponse`` that :meth:`Model.render` predicts."""
    return {key: frame.get(key) for key in RENDERED_FIELDS}
