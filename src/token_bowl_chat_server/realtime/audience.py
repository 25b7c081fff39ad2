"""Who receives a published frame. Plain data, so a broker can carry it between nodes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Room:
    """Every connection of every user, except all connections of ``exclude_user_id``."""

    exclude_user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Users:
    """Every connection of these users."""

    user_ids: frozenset[str]


Audience = Room | Users
