"""Presence on one node: the hub's connection counts are the whole truth."""

from __future__ import annotations

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_frames import announce_presence


class MemoryPresenceStore:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def user_online(self, user: User) -> None:
        announce_presence(self.hub, user, online=True)

    def user_offline(self, user: User) -> None:
        announce_presence(self.hub, user, online=False)

    async def online_user_ids(self) -> list[str]:
        return self.hub.online_user_ids()
