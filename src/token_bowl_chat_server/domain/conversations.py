"""Conversations: a user's titled bookmark lists of message ids (PROTOCOL.md 4.7), and who may
do what with one (PROTOCOL.md 3.6).

A conversation belongs to its creator by user id, so a rename changes the name it is shown
under and a new account that takes a deleted creator's name gains nothing. It refers to its
messages by ``seq``; a message that is deleted later simply drops out of every conversation
that listed it, and a reader is shown only the messages they may see
(:func:`~token_bowl_chat_server.domain.permissions.can_see`).
"""

from __future__ import annotations

from dataclasses import dataclass

from token_bowl_chat.protocol.models import MessageType
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import Forbidden
from token_bowl_chat_server.domain.permissions import Action, allowed, can_see


@dataclass(frozen=True, slots=True)
class MessageRef:
    """One message a conversation lists: its id and what visibility depends on."""

    message_id: str
    message_type: MessageType
    from_user_id: str | None
    to_user_id: str | None

    @property
    def is_room(self) -> bool:
        return self.message_type is MessageType.ROOM


@dataclass(frozen=True, slots=True)
class Conversation:
    """As stored. ``messages`` are in the order the creator gave, deleted ones left out.

    ``created_by_id`` is ``None`` once the creator's account is deleted; then nobody owns it
    and ``created_by_username`` is the name it was created under.
    """

    id: str
    title: str | None
    description: str | None
    created_by_id: str | None
    created_by_username: str
    created_at: int  # microseconds since the epoch
    messages: tuple[MessageRef, ...]

    def message_ids_for(self, reader: User) -> list[str]:
        """The ids ``reader`` is shown: only messages they may see (a viewer reading someone
        else's conversation is not told the ids of DMs between others)."""
        return [ref.message_id for ref in self.messages if can_see(reader, ref)]


def is_creator(user: User, conversation: Conversation) -> bool:
    return conversation.created_by_id == user.id


def check_can_view(user: User, conversation: Conversation) -> None:
    """The creator, or a role that reads any conversation (viewers). Admins are not exempt,
    as upstream."""
    if not is_creator(user, conversation) and not allowed(user.role, Action.READ_ANY_CONVERSATION):
        raise Forbidden("You can only view your own conversations")


def check_can_update(user: User, conversation: Conversation) -> None:
    if not is_creator(user, conversation):
        raise Forbidden("You can only update your own conversations")


def check_can_delete(user: User, conversation: Conversation) -> None:
    """The creator, or a role that deletes any conversation (admins), on every path."""
    if not is_creator(user, conversation) and not allowed(
        user.role, Action.DELETE_ANY_CONVERSATION
    ):
        raise Forbidden("You can only delete your own conversations")
