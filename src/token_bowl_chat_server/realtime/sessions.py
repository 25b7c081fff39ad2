"""The live sessions of every node, as the account use cases steer them (``ports.Sessions``).

An account change acts on this node's hub at once and, with several nodes, is sent to the
others through the broker, which runs the same on their hubs: a rotated key or a deleted
account closes the user's sockets everywhere, a renamed or re-roled account acts as its new
record everywhere. Every node also drops the user from its authentication cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_store import PresenceStore

CLOSE_USER = "close_user"
REFRESH = "refresh"


class Peers(Protocol):
    """The other nodes (``broker_redis.RedisBroker``)."""

    def broadcast(self, name: str, **args: Any) -> None: ...
    def on_command(self, name: str, handler: Callable[[dict[str, Any]], None]) -> None: ...


def user_to_fields(user: User) -> dict[str, Any]:
    fields = dataclasses.asdict(user)
    fields["role"] = user.role.value
    return fields


def user_from_fields(fields: dict[str, Any]) -> User:
    return User(**{**fields, "role": Role(fields["role"])})


class NodeSessions:
    def __init__(self, hub: Hub, presence: PresenceStore, peers: Peers | None = None) -> None:
        self.hub = hub
        self.presence = presence
        self.peers = peers
        # Called with the id of every account that changed, here or on another node: the
        # authentication caches that must forget it.
        self.account_changed: list[Callable[[str], None]] = []
        if peers is not None:
            peers.on_command(CLOSE_USER, self._closed_elsewhere)
            peers.on_command(REFRESH, self._refreshed_elsewhere)

    def close_user(self, user_id: str, code: int, reason: str) -> None:
        self._close_here(user_id, code, reason)
        if self.peers is not None:
            self.peers.broadcast(CLOSE_USER, user_id=user_id, code=code, reason=reason)

    def refresh(self, user: User) -> None:
        self._refresh_here(user)
        if self.peers is not None:
            self.peers.broadcast(REFRESH, user=user_to_fields(user))

    async def online_user_ids(self) -> list[str]:
        return await self.presence.online_user_ids()

    def _close_here(self, user_id: str, code: int, reason: str) -> None:
        self._forget(user_id)
        self.hub.close_user(user_id, code, reason)

    def _refresh_here(self, user: User) -> None:
        self._forget(user.id)
        self.hub.refresh(user)

    def _forget(self, user_id: str) -> None:
        for forget in self.account_changed:
            forget(user_id)

    def _closed_elsewhere(self, args: dict[str, Any]) -> None:
        self._close_here(str(args["user_id"]), int(args["code"]), str(args["reason"]))

    def _refreshed_elsewhere(self, args: dict[str, Any]) -> None:
        self._refresh_here(user_from_fields(args["user"]))
