"""The role rules that the table in domain/permissions.py decides, checked at the places that
ask it: the role x action table is the only switch."""

from __future__ import annotations

from typing import Any

import pytest

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain import permissions
from token_bowl_chat_server.domain.admins import resolved_role, update_values
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.errors import InvalidInput
from token_bowl_chat_server.domain.permissions import Action, allowed, roles_allowed
from token_bowl_chat_server.services.messages import MessageService


def _user(role: Role, logo: str | None = None) -> User:
    return User("u1", "u", role, logo, None, None, None, "abcd", 0)


class _Store:
    def __init__(self) -> None:
        self.asked: list[str | None] = []

    async def direct_history(
        self, user_id: str | None, limit: int, offset: int, since: int | None
    ) -> tuple[list[Message], int]:
        self.asked.append(user_id)
        return [], 0


def _service(store: _Store) -> MessageService:
    return MessageService(None, store, None, None, 1)  # type: ignore[arg-type]


async def test_rest_history_shows_every_dm_only_to_a_role_granted_read_all_direct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _Store()
    viewer = _user(Role.VIEWER)
    await _service(store).direct_history(viewer, 50, 0, None, all_if_allowed=True)
    assert store.asked == ["u1"]  # no role has it: a viewer's DMs are its own
    assert roles_allowed(Action.READ_ALL_DIRECT) == []

    granted = permissions.PERMISSIONS[Role.VIEWER] | {Action.READ_ALL_DIRECT}
    monkeypatch.setitem(permissions.PERMISSIONS, Role.VIEWER, granted)
    await _service(store).direct_history(viewer, 50, 0, None, all_if_allowed=True)
    await _service(store).direct_history(viewer, 50, 0, None)  # WebSocket: never
    assert store.asked == ["u1", None, "u1"]


def test_capabilities_of_each_role() -> None:
    assert roles_allowed(Action.RECEIVE_DIRECT) == [Role.ADMIN, Role.MEMBER, Role.BOT]
    assert roles_allowed(Action.LISTED_AS_CHAT_USER) == [Role.ADMIN, Role.MEMBER, Role.BOT]
    assert roles_allowed(Action.RECEIVE_WEBHOOKS) == [Role.ADMIN, Role.MEMBER, Role.BOT]
    assert not allowed(Role.BOT, Action.USE_LOGO)
    assert roles_allowed(Action.ASSIGN_ROLES) == [Role.ADMIN]


@pytest.mark.parametrize(
    ("current", "given", "expected"),
    [
        (Role.MEMBER, {}, Role.MEMBER),
        (Role.MEMBER, {"role": "viewer", "admin": True}, Role.VIEWER),  # role wins
        (Role.MEMBER, {"viewer": True, "admin": True}, Role.ADMIN),  # the last true flag
        (Role.MEMBER, {"viewer": True, "admin": True, "bot": True}, Role.BOT),
        (Role.ADMIN, {"admin": False}, Role.MEMBER),
        (Role.VIEWER, {"admin": False}, Role.VIEWER),  # false for another role: no change
        (Role.BOT, {"bot": False, "viewer": True}, Role.VIEWER),
    ],
)
def test_the_role_a_patch_asks_for(current: Role, given: dict[str, Any], expected: Role) -> None:
    assert resolved_role(current, given) is expected


def test_update_values_clear_with_null_and_keep_bots_without_logos() -> None:
    member = _user(Role.MEMBER, logo="claude-color.png")
    assert update_values(member, {"email": None, "username": "u"}) == {"email": None}
    assert update_values(member, {"username": None}) == {}
    assert update_values(member, {"bot": True}) == {"role": "bot", "logo": None}
    with pytest.raises(InvalidInput):
        update_values(_user(Role.BOT), {"logo": "claude-color.png"})
