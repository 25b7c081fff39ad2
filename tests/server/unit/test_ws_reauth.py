"""A connection's second look at its key, once it is in the hub, also takes the account as
it is now: a role change or rename that committed between the handshake's check and the
connection joining the hub (so the change's sweep of the hub missed it) still reaches it."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.api.ws.endpoint import _still_authenticated
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import NotAuthenticated

MEMBER = User("u1", "alice", Role.MEMBER, None, None, None, None, "abcd", 0)


class _Accounts:
    def __init__(self, now: User | None) -> None:
        self.now = now

    async def authenticate(self, api_key: str | None) -> User:
        if self.now is None:
            raise NotAuthenticated("gone")
        return self.now


def _parts(now: User | None) -> tuple[Any, Any, Any]:
    services = SimpleNamespace(accounts=_Accounts(now))
    websocket = SimpleNamespace(query_params={"api_key": "k" * 64}, headers={})
    conn = SimpleNamespace(user=MEMBER, user_id=MEMBER.id)
    return services, websocket, conn


async def test_a_role_changed_since_the_handshake_is_taken() -> None:
    viewer = replace(MEMBER, role=Role.VIEWER, username="alice2")
    services, websocket, conn = _parts(viewer)
    assert await _still_authenticated(services, websocket, conn)
    assert conn.user == viewer


async def test_a_deleted_account_or_another_owner_of_the_key_is_refused() -> None:
    services, websocket, conn = _parts(None)
    assert not await _still_authenticated(services, websocket, conn)
    services, websocket, conn = _parts(replace(MEMBER, id="u2"))
    assert not await _still_authenticated(services, websocket, conn)
    assert conn.user == MEMBER
