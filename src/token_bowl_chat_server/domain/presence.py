"""Who is online on this node: a user is online while at least one connection is open."""

from __future__ import annotations


class Presence:
    """Connection counts per user, in the order users came online (since last offline)."""

    def __init__(self) -> None:
        # dicts keep insertion order: a user re-inserted after going offline moves to the end.
        self._connections: dict[str, int] = {}

    def connect(self, user_id: str) -> bool:
        """Returns True when the user just came online."""
        count = self._connections.get(user_id, 0)
        self._connections[user_id] = count + 1
        return count == 0

    def disconnect(self, user_id: str) -> bool:
        """Returns True when the user just went offline."""
        count = self._connections.get(user_id, 0)
        if count <= 1:
            self._connections.pop(user_id, None)
            return count == 1
        self._connections[user_id] = count - 1
        return False

    def online(self) -> list[str]:
        return list(self._connections)

    def is_online(self, user_id: str) -> bool:
        return user_id in self._connections
