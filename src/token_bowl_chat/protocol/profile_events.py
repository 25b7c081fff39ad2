"""Extension frame: a user's public profile changed (kept apart from ``events.py`` because
only clients that show profiles, such as the web page, read it)."""

from __future__ import annotations

from typing import Literal

from token_bowl_chat.protocol.events import Event


class UserUpdated(Event):
    """A user was renamed or changed their logo. Sent to every extended connection, the
    user's own included, so open pages show the new name and logo at once;
    ``previous_username`` is the name clients knew the user by until now. Never sent to
    legacy connections (the original web app takes unknown frames for chat messages)."""

    type: Literal["user_updated"] = "user_updated"
    user_id: str
    username: str
    previous_username: str
    role: str
    logo: str | None = None
    emoji: str | None = None
    bot: bool = False
    viewer: bool = False
