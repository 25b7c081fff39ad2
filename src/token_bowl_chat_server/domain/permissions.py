"""Who may do what: one table of role x action (PROTOCOL.md sections 2.2 and 3.6).

Every REST route and WebSocket command that is gated asks :func:`require` (or
:func:`allowed`) with an :class:`Action`; nothing else decides by role. Owner checks ("your
own bot", "your own message") are made by the use case, which then asks for the ``*_ANY``
action only when the caller is not the owner.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.errors import Forbidden


class Action(StrEnum):
    """The permission strings of PROTOCOL.md 2.2, plus ours for edits and moderation."""

    SEND_ROOM = "messages:send:room"
    SEND_DIRECT = "messages:send:direct"
    EDIT_OWN_MESSAGE = "messages:update:own"
    EDIT_ANY_MESSAGE = "messages:update:any"
    DELETE_OWN_MESSAGE = "messages:delete:own"
    DELETE_ANY_MESSAGE = "messages:delete:any"
    READ_ALL_DIRECT = "messages:read:all_direct"  # upstream's viewer rule on REST history
    # What a role is, rather than does (PROTOCOL.md 3.6): who may be sent DMs, who gets
    # webhooks, who is listed in GET /users, who may show a logo (bots use emoji only).
    RECEIVE_DIRECT = "messages:receive:direct"
    RECEIVE_WEBHOOKS = "webhooks:receive"
    LISTED_AS_CHAT_USER = "users:listed"
    USE_LOGO = "users:logo"
    UPDATE_OWN_PROFILE = "users:update:own"
    UPDATE_ANY_USER = "users:update:any"
    DELETE_USER = "users:delete"
    ASSIGN_ROLES = "users:assign_roles"
    CREATE_BOTS = "bots:create"
    MANAGE_OWN_BOTS = "bots:update:own"
    MANAGE_ANY_BOT = "bots:update:any"
    READ_ANY_CONVERSATION = "conversations:read:any"
    DELETE_ANY_CONVERSATION = "conversations:delete:any"
    ADMIN_ACCESS = "admin:access"


_A = Action
_MEMBER = frozenset(
    {
        _A.SEND_ROOM,
        _A.SEND_DIRECT,
        _A.EDIT_OWN_MESSAGE,
        _A.DELETE_OWN_MESSAGE,
        _A.UPDATE_OWN_PROFILE,
        _A.CREATE_BOTS,
        _A.MANAGE_OWN_BOTS,
        _A.RECEIVE_DIRECT,
        _A.RECEIVE_WEBHOOKS,
        _A.LISTED_AS_CHAT_USER,
        _A.USE_LOGO,
    }
)

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action) - {_A.READ_ALL_DIRECT, _A.READ_ANY_CONVERSATION},
    Role.MEMBER: _MEMBER,
    # Not READ_ALL_DIRECT: anyone may register as a viewer, so upstream's rule would show
    # every DM to anyone who asks (DMs stay private to their two parties, guarantee 9).
    # Granting it here is all it takes to restore upstream's GET /messages/direct.
    Role.VIEWER: frozenset({_A.READ_ANY_CONVERSATION, _A.USE_LOGO}),
    Role.BOT: frozenset(
        {
            _A.SEND_ROOM,
            _A.EDIT_OWN_MESSAGE,
            _A.DELETE_OWN_MESSAGE,
            _A.UPDATE_OWN_PROFILE,
            _A.RECEIVE_DIRECT,
            _A.RECEIVE_WEBHOOKS,
            _A.LISTED_AS_CHAT_USER,
        }
    ),
}


def allowed(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]


def roles_allowed(action: Action) -> list[Role]:
    """Every role that may ``action``, for queries that filter accounts by role."""
    return [role for role in Role if allowed(role, action)]


def require(user: User, action: Action, message: str | None = None) -> None:
    """Raise :class:`Forbidden` unless ``user``'s role may do ``action``.

    ``message`` replaces upstream's generic permission text where upstream has a specific one.
    """
    if allowed(user.role, action):
        return
    code = ErrorCode.ADMIN_REQUIRED if action is Action.ADMIN_ACCESS else None
    raise Forbidden(
        message
        or (
            f"Permission '{action.value}' required. "
            f"Your role '{user.role.value}' does not have this permission."
        ),
        code,
    )


def require_admin(user: User) -> None:
    """The gate of every ``/admin/*`` route except the role one (PROTOCOL.md 4.8)."""
    require(user, Action.ADMIN_ACCESS, "Admin privileges required")


def check_can_send(user: User, direct: bool) -> None:
    what = "direct messages" if direct else "room messages"
    require(
        user,
        Action.SEND_DIRECT if direct else Action.SEND_ROOM,
        f"Your role '{user.role.value}' does not have permission to send {what}",
    )


def check_can_update_own_profile(user: User) -> None:
    require(user, Action.UPDATE_OWN_PROFILE)


class Addressed(Protocol):
    """What visibility depends on: a :class:`Message`, or a conversation's reference to one."""

    @property
    def is_room(self) -> bool: ...
    @property
    def from_user_id(self) -> str | None: ...
    @property
    def to_user_id(self) -> str | None: ...


def can_see(user: User, message: Addressed) -> bool:
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
