"""Tell the other users when someone comes online or goes offline.

Presence is kept per node by the hub, so the frame goes to this node's connections. Only
extended connections get it: the original web app takes any frame it does not know for a
chat message.
"""

from __future__ import annotations

from token_bowl_chat.protocol.events import PresenceChanged, encode_event
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Dialect, Room
from token_bowl_chat_server.realtime.hub import Hub


def announce_presence(hub: Hub, user: User, *, online: bool) -> None:
    frame = PresenceChanged(user_id=user.id, username=user.username, online=online)
    hub.deliver(Room(exclude_user_id=user.id, dialect=Dialect.EXTENDED), encode_event(frame))
