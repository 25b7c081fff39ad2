"""Who may do what (PROTOCOL.md section 2.2). Each check raises :class:`Forbidden`."""

from __future__ import annotations

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.errors import Forbidden

_SEND_ROOM = {Role.ADMIN, Role.MEMBER, Role.BOT}
_SEND_DIRECT = {Role.ADMIN, Role.MEMBER}
_UPDATE_OWN = {Role.ADMIN, Role.MEMBER, Role.BOT}


def check_can_send(user: User, direct: bool) -> None:
    allowed = _SEND_DIRECT if direct else _SEND_ROOM
    if user.role not in allowed:
        what = "direct messages" if direct else "room messages"
        raise Forbidden(f"Your role '{user.role.value}' does not have permission to send {what}")


def check_can_update_own_profile(user: User) -> None:
    if user.role not in _UPDATE_OWN:
        raise Forbidden(
            f"Permission 'users:update:own' required. "
            f"Your role '{user.role.value}' does not have this permission."
        )


def can_see(user: User, message: Message) -> bool:
    """A room message is for everyone; a DM only for its two parties.

    Upstream also shows every DM to viewers on ``GET /messages/direct``; that listing rule
    lives in the history query, not here, so no one can mark or be told of a DM they are not
    part of.
    """
    if message.is_room:
        return True
    return user.id in (message.from_user_id, message.to_user_id)


def counts_as_unread_for(user: User, message: Message) -> bool:
    """Whether ``message`` can be unread for ``user`` (PROTOCOL.md section 7.1)."""
    if message.from_user_id == user.id:
        return False
    return message.is_room or message.to_user_id == user.id
