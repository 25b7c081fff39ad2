"""A bot account as the bot use cases see it: the account plus who created it."""

from __future__ import annotations

from dataclasses import dataclass

from token_bowl_chat_server.domain.entities import User


@dataclass(frozen=True, slots=True)
class Bot:
    user: User  # the bot's own account (role ``bot``)
    owner_id: str | None  # the creator's id; None for a bot without a recorded creator
    owner_username: str | None  # None when there is no creator or it no longer exists

    def owned_by(self, user: User) -> bool:
        return self.owner_id is not None and self.owner_id == user.id
