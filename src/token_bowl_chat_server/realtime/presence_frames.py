"""Tell the other users when someone comes online or goes offline.

Presence is kept per node by the hub; on one node the frame goes to the hub, on many
(``presence_redis.py``) through the broker. Only
extended connections get it: the original web app takes any frame it does not know for a
chat message.
"""

from __future__ import annotations

from token_bowl_chat.protocol.events import PresenceChanged, encode_event
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Audience, Dialect, Room
from token_bowl_chat_server.realtime.hub import Hub


def presence_frame(user_id: str, username: str, *, online: bool) -> tuple[Audience, str]:
    """Who is told, and the encoded ``presence_changed`` frame."""
    frame = PresenceChanged(user_id=user_id, username=username, online=online)
    return Room(exclude_user_id=user_id, dialect=Dialect.EXTENDED), encode_event(frame)


def announce_presence(hub: Hub, user: User, *, online: bool) -> None:
    hub.deliver(*presence_frame(user.id, user.username, online=online))
