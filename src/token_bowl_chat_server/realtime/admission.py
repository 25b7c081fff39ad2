"""Caps on open WebSocket connections per user and per client address on this node.

Every open connection holds an outbox, a read loop and, while it closes, a socket that may
take a while to go. Without a cap one key (or one address) could open connections until the
node runs out of memory or descriptors. A slot is taken before the upgrade and given back
when the connection ends; taking one is synchronous, so two connects racing each other
cannot both squeeze under a cap.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum


class Refusal(Enum):
    USER = "user"
    ADDRESS = "address"


class ConnectionCaps:
    def __init__(self, per_user: int | None = None, per_address: int | None = None) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self._users: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()
        self.refused = 0  # upgrades refused by a cap

    def acquire(self, user_id: str, address: str | None) -> Refusal | None:
        """Take a slot for a new connection; ``None`` means granted, else which cap is full.
        A granted slot must be given back with :meth:`release` (same arguments)."""
        if self.per_user is not None and self._users[user_id] >= self.per_user:
            self.refused += 1
            return Refusal.USER
        if (
            address is not None
            and self.per_address is not None
            and self._addresses[address] >= self.per_address
        ):
            self.refused += 1
            return Refusal.ADDRESS
        self._users[user_id] += 1
        if address is not None:
            self._addresses[address] += 1
        return None

    def release(self, user_id: str, address: str | None) -> None:
        _decrement(self._users, user_id)
        if address is not None:
            _decrement(self._addresses, address)


def _decrement(counts: Counter[str], key: str) -> None:
    # Drop the key at zero, so a user or address with no connection costs no memory.
    if counts[key] <= 1:
        counts.pop(key, None)
    else:
        counts[key] -= 1
