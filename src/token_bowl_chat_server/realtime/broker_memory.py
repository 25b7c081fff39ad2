"""The single-node broker: publishing is delivering to the local hub."""

from __future__ import annotations

from token_bowl_chat_server.realtime.audience import Audience
from token_bowl_chat_server.realtime.hub import Hub


class MemoryBroker:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def publish(self, audience: Audience, text: str, seq: int | None = None) -> None:
        self.hub.deliver(audience, text, seq)
