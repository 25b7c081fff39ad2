"""Fan-out between nodes. Services publish here; every node's hub delivers locally."""

from __future__ import annotations

from typing import Protocol

from token_bowl_chat_server.realtime.audience import Audience


class Broker(Protocol):
    def publish(self, audience: Audience, text: str, seq: int | None = None) -> None:
        """Deliver an encoded frame to the audience on every node. Never blocks."""
        ...
