"""Typing indicators as pure state transitions of (state, event, now).

A typist types *to* a target: the room (``None``) or one recipient's user id. An indicator lives
until ``timeout`` seconds pass without a renewal, the typist sends a message to that target, or
the connection it came from closes. Renewals are relayed at most every ``relay_interval``
seconds, so receivers keep seeing a live indicator without being flooded.
"""

from __future__ import annotations

from dataclasses import dataclass

Key = tuple[str, str | None]  # (typist user id, target user id or None for the room)


@dataclass(slots=True)
class _Indicator:
    expires_at: float
    last_relayed: float
    connection_id: int


class TypingTracker:
    def __init__(self, timeout: float, relay_interval: float) -> None:
        self.timeout = timeout
        self.relay_interval = relay_interval
        self._live: dict[Key, _Indicator] = {}

    def start(self, key: Key, connection_id: int, now: float) -> bool:
        """Record a typing frame. Returns whether it should be relayed to the audience."""
        current = self._live.get(key)
        if current is None:
            self._live[key] = _Indicator(now + self.timeout, now, connection_id)
            return True
        current.expires_at = now + self.timeout
        current.connection_id = connection_id
        if now - current.last_relayed >= self.relay_interval:
            current.last_relayed = now
            return True
        return False

    def stop(self, key: Key) -> bool:
        """The typist sent a message to the target. Returns whether a stop must be announced."""
        return self._live.pop(key, None) is not None

    def drop_connection(self, connection_id: int) -> list[Key]:
        """The connection closed: every indicator it started stops."""
        gone = [key for key, ind in self._live.items() if ind.connection_id == connection_id]
        for key in gone:
            del self._live[key]
        return gone

    def expire(self, now: float) -> list[Key]:
        """Indicators not renewed in time. They are removed and must be announced as stopped."""
        gone = [key for key, ind in self._live.items() if ind.expires_at <= now]
        for key in gone:
            del self._live[key]
        return gone

    def next_deadline(self) -> float | None:
        return min((ind.expires_at for ind in self._live.values()), default=None)

    def is_typing(self, key: Key) -> bool:
        return key in self._live
