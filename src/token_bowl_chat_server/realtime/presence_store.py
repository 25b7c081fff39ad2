"""Who is online, across every node: the port the endpoint and the account services use.

Each node's hub counts its own connections (``domain/presence.py``); a store adds what the
other nodes hold. ``presence_memory.py`` is the single-node store, ``presence_redis.py`` the
one for many processes.
"""

from __future__ import annotations

from typing import Protocol

from token_bowl_chat_server.domain.entities import User


class PresenceStore(Protocol):
    def user_online(self, user: User) -> None:
        """This node's first connection of ``user`` opened. Never blocks."""
        ...

    def user_offline(self, user: User) -> None:
        """This node's last connection of ``user`` closed. Never blocks."""
        ...

    async def online_user_ids(self) -> list[str]:
        """Users with a connection on any node, in the order they came online."""
        ...
