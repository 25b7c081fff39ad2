"""Who receives a published frame. Plain data, so a broker can carry it between nodes."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Dialect(enum.Enum):
    """Which connections of the audience a frame suits.

    A connection speaks the extended protocol when it asked for it at connect time
    (``?protocol_version=1.1``); the others are legacy clients (the published 2.x SDK, the
    original web app) that would misread an extension frame, so extensions go only to the
    first kind, and a legacy replacement, if any, only to the second.
    """

    ANY = "any"
    EXTENDED = "extended"
    LEGACY = "legacy"

    def admits(self, extended: bool) -> bool:
        return self is Dialect.ANY or (self is Dialect.EXTENDED) == extended


@dataclass(frozen=True, slots=True)
class Room:
    """Every connection of every user, except all connections of ``exclude_user_id``."""

    exclude_user_id: str | None = None
    dialect: Dialect = Dialect.ANY


@dataclass(frozen=True, slots=True)
class Users:
    """Every connection of these users."""

    user_ids: frozenset[str]
    dialect: Dialect = Dialect.ANY


@dataclass(frozen=True, slots=True)
class OwnCopies:
    """The connections of ``user_id`` that asked for copies of their own messages
    (``?own_messages=1``, extended connections only): a page showing what its person sent
    from another tab or device."""

    user_id: str
    dialect: Dialect = Dialect.EXTENDED


Audience = Room | Users | OwnCopies
