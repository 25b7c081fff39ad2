"""Admin use cases: accounts (list, get, update, change role, delete), live connection
statistics, and making an admin from the server's machine (``token-bowl admin create``).

Every change reaches the open sockets at once: a deleted account's connections are closed
(1008, like a key rotation), a changed one's act as the new record from their next frame
(a member demoted to viewer can no longer send).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import Role, UpdateUsernameRequest
from token_bowl_chat_server.domain.admins import UPDATE_FIELDS, role_values, update_values
from token_bowl_chat_server.domain.entities import User, iso
from token_bowl_chat_server.domain.errors import Conflict, InvalidInput, NotFound
from token_bowl_chat_server.domain.permissions import Action, require, require_admin
from token_bowl_chat_server.services.accounts import hash_key, new_account, new_key
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import (
    ConnectionRegistry,
    Sessions,
    UserAdminStore,
    UserStore,
)


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    user_id: str
    username: str
    connection_id: int
    last_activity: str
    last_pong: str
    seconds_since_activity: float
    seconds_since_pong: float
    is_healthy: bool


def parse_user_id(raw_id: str) -> str:
    """User ids in paths are parsed as UUIDs (any case or form upstream's parser takes)."""
    try:
        return str(uuid.UUID(raw_id))
    except ValueError:
        raise InvalidInput(f"Invalid user ID format: {raw_id}", ErrorCode.INVALID_ID) from None


def _not_found(raw_id: str) -> NotFound:
    return NotFound(f"User {raw_id} not found", ErrorCode.USER_NOT_FOUND)


class AdminService:
    def __init__(
        self,
        users: UserStore,
        store: UserAdminStore,
        sessions: Sessions,
        connections: ConnectionRegistry,
        *,
        stale_after: float,
        clock: WallClock = now_micros,
        monotonic: Callable[[], float] = time.monotonic,
        profile_changed: Callable[[User, User], None] | None = None,
    ) -> None:
        self.users = users
        self.store = store
        self.sessions = sessions
        self.connections = connections
        self.stale_after = stale_after
        self.clock = clock
        # The clock connections stamp their activity with (the hub's).
        self.monotonic = monotonic
        # Told of every change with the record before and after (to tell open clients, as a
        # self rename does: realtime/profile_frames.py); must not block.
        self.profile_changed = profile_changed

    async def list_users(self, actor: User) -> list[User]:
        require_admin(actor)
        return await self.store.list_all()

    async def get_user(self, actor: User, raw_id: str) -> User:
        require_admin(actor)
        user = await self.users.by_id(parse_user_id(raw_id))
        if user is None:
            raise _not_found(raw_id)
        return user

    async def update_user(self, actor: User, raw_id: str, given: Mapping[str, Any]) -> User:
        """Apply a PATCH /admin/users body; ``given`` holds only the fields it names.

        A rename works as a self rename does: old messages show the new name, open sockets
        act under it and DMs to it reach them (upstream's admin rename orphaned them).
        """
        require(actor, Action.UPDATE_ANY_USER)
        user_id = parse_user_id(raw_id)
        if not any(name in given for name in UPDATE_FIELDS):
            raise InvalidInput(
                "No valid fields provided to update. Valid fields: " + ", ".join(UPDATE_FIELDS)
            )
        return await self._change(raw_id, user_id, lambda current: update_values(current, given))

    async def assign_role(self, actor: User, raw_id: str, role: Role) -> User:
        require(actor, Action.ASSIGN_ROLES)
        user_id = parse_user_id(raw_id)
        return await self._change(raw_id, user_id, lambda current: role_values(current, role))

    async def delete_user(self, actor: User, raw_id: str) -> None:
        """Delete the account and the bots it created, and close their sockets (1008)."""
        require(actor, Action.DELETE_USER)
        deleted = await self.store.delete(parse_user_id(raw_id))
        if deleted is None:
            raise _not_found(raw_id)
        for user_id in deleted:
            self.sessions.close_user(user_id, CloseCode.POLICY_VIOLATION, "account deleted")

    async def _change(
        self, raw_id: str, user_id: str, decide: Callable[[User], Mapping[str, Any]]
    ) -> User:
        changed = await self.store.change(user_id, decide)
        if changed is None:
            raise _not_found(raw_id)
        before, after = changed
        # The next frame on every open socket of the account is handled as the new record.
        self.sessions.refresh(after)
        if self.profile_changed is not None:
            self.profile_changed(before, after)
        return after

    def connection_stats(self, actor: User) -> list[ConnectionStats]:
        """Every open WebSocket connection on this node, oldest first."""
        require_admin(actor)
        now = self.monotonic()
        wall = self.clock()

        def at(moment: float) -> str:
            return iso(wall - int((now - moment) * 1_000_000))

        stats = []
        for conn in sorted(self.connections.all_connections(), key=lambda c: c.id):
            since_activity = max(0.0, now - conn.last_activity)
            since_pong = max(0.0, now - conn.last_pong)
            stats.append(
                ConnectionStats(
                    user_id=conn.user.id,
                    username=conn.user.username,
                    connection_id=conn.id,
                    last_activity=at(conn.last_activity),
                    last_pong=at(conn.last_pong),
                    seconds_since_activity=round(since_activity, 3),
                    seconds_since_pong=round(since_pong, 3),
                    is_healthy=since_activity < self.stale_after,
                )
            )
        return stats

    async def create_or_promote_admin(self, username: str) -> tuple[User, str, bool]:
        """Make ``username`` an admin with a new key, creating the account if there is none.

        For ``token-bowl admin create`` on the server's machine (no API call, no actor).
        Returns the account, its new plaintext key (shown once) and whether it was created.
        Raises ``InvalidInput`` for a name registration would refuse.
        """
        try:
            UpdateUsernameRequest(username=username)
        except ValidationError as exc:
            raise InvalidInput(f"Invalid username: {exc.errors()[0]['msg']}") from None
        key = new_key()
        for _ in range(2):  # a registration of the same name may win the first try
            existing = await self.users.by_username(username)
            if existing is None:
                user = new_account(username, Role.ADMIN, key, self.clock())
                try:
                    return await self.users.create(user, hash_key(key)), key, True
                except Conflict:
                    continue

            def promote(current: User) -> dict[str, Any]:
                return {
                    **role_values(current, Role.ADMIN),
                    "api_key_hash": hash_key(key),
                    "api_key_hint": key[-4:],
                }

            changed = await self.store.change(existing.id, promote)
            if changed is not None:
                # The old key is dead: its sockets (on this process, if any) go with it.
                self.sessions.close_user(existing.id, CloseCode.POLICY_VIOLATION, "API key rotated")
                return changed[1], key, False
        raise Conflict(f"User {username} changed while being made an admin; try again")
