"""Tell every open client when a user's public profile changes (name, logo).

Extended connections only, like presence: a legacy client would misread the frame. The
user's own connections get it too, so another tab or device shows the new name.
"""

from __future__ import annotations

from collections.abc import Callable

from token_bowl_chat.protocol.events import encode_event
from token_bowl_chat.protocol.models import Role
from token_bowl_chat.protocol.profile_events import UserUpdated
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Audience, Dialect, Room

ProfileAnnouncer = Callable[[User, User], None]


def profile_announcer(publish: Callable[[Audience, str], None]) -> ProfileAnnouncer:
    """``announce(before, after)``: publish ``user_updated`` if what others see changed."""

    def announce(before: User, after: User) -> None:
        public = ("username", "role", "logo", "emoji")
        if all(getattr(before, field) == getattr(after, field) for field in public):
            return
        frame = UserUpdated(
            user_id=after.id,
            username=after.username,
            previous_username=before.username,
            role=after.role.value,
            logo=after.logo,
            emoji=after.emoji,
            bot=after.role is Role.BOT,
            viewer=after.role is Role.VIEWER,
        )
        publish(Room(dialect=Dialect.EXTENDED), encode_event(frame))

    return announce
