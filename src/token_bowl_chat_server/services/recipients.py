"""Who a DM (or DM typing) goes to: one rule for sending and typing."""

from __future__ import annotations

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import InvalidInput, NotFound, RecipientIsViewer
from token_bowl_chat_server.domain.permissions import Action, allowed
from token_bowl_chat_server.services.ports import UserStore


async def direct_recipient(users: UserStore, to_username: str | None) -> User | None:
    """The recipient named by ``to_username``; ``None`` means the room.

    Raises ``InvalidInput`` for an empty name, ``NotFound`` for an unknown one and
    ``RecipientIsViewer`` for a viewer, who cannot receive DMs.
    """
    if to_username is None:
        return None
    if not to_username:
        raise InvalidInput("Field 'to_username' must not be empty", ErrorCode.MISSING_FIELD)
    recipient = await users.by_username(to_username)
    if recipient is None:
        raise NotFound(f"User {to_username} not found", ErrorCode.USER_NOT_FOUND)
    if not allowed(recipient.role, Action.RECEIVE_DIRECT):
        raise RecipientIsViewer(f"Cannot send messages to viewer user {to_username}")
    return recipient
