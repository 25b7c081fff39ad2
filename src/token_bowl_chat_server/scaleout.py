"""The parts of a server process that make it one node of many (``REDIS_URL`` set).

Built by ``app.build_services`` and started and stopped by the app's lifespan: the Redis
broker with this node's sequencer, presence in Redis, and the relay of typing stops.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from token_bowl_chat_server.realtime.broker_redis import RedisBroker
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_redis import RedisPresenceStore
from token_bowl_chat_server.realtime.rate_limit_redis import RedisRateLimit
from token_bowl_chat_server.realtime.sequencer import Sequencer
from token_bowl_chat_server.services.ports import MessageStore
from token_bowl_chat_server.services.sequence_fill import SequenceFill
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.settings import Settings
from token_bowl_chat_server.storage.committed import SqlCommittedLog
from token_bowl_chat_server.storage.database import Database

MESSAGE_SENT = "message_sent"
# How long startup waits for the first subscription before serving without Redis.
_FIRST_CONNECT = 5.0


@dataclass
class Node:
    node_id: str
    redis: Redis
    sequencer: Sequencer
    broker: RedisBroker
    presence: RedisPresenceStore

    async def start(self) -> None:
        self.broker.start()
        self.presence.start()
        # Serving before the subscription would deliver nothing from other nodes; a Redis
        # that is down at startup does not stop this node, which recovers when it is back.
        await self.broker.wait_subscribed(_FIRST_CONNECT)

    async def ready(self) -> bool:
        return await self.broker.ping()

    async def stop(self) -> None:
        await self.presence.stop()
        await self.broker.stop()
        await self.redis.aclose()

    def stats(self) -> list[tuple[str, str, str, float]]:
        """``(name, "gauge" | "counter", help, value)`` for ``GET /metrics``."""
        broker, sequencer = self.broker, self.sequencer
        return [
            ("tbc_redis_connected", "gauge", "1 while subscribed to Redis", broker.connected),
            ("tbc_redis_published_total", "counter", "Payloads sent to Redis", broker.published),
            ("tbc_redis_received_total", "counter", "Payloads of other nodes", broker.received),
            (
                "tbc_redis_dropped_total",
                "counter",
                "Payloads not sent (Redis away, or the outbox full)",
                broker.dropped,
            ),
            ("tbc_redis_reconnects_total", "counter", "Lost Redis connections", broker.reconnects),
            ("tbc_sequencer_held", "gauge", "Frames held behind a seq gap", sequencer.held),
            (
                "tbc_sequencer_fills_total",
                "counter",
                "Seq gaps read from the database",
                sequencer.fills,
            ),
            (
                "tbc_sequencer_filled_total",
                "counter",
                "Frames delivered from the database (missed live)",
                sequencer.filled,
            ),
        ]

    def rate_limit(self, name: str, rate: float, burst: int) -> RedisRateLimit:
        """A limit every node counts against, per node while Redis is away."""
        return RedisRateLimit(self.redis, name, rate, burst, lambda: self.broker.connected)

    def relay_typing_stops(self, typing: TypingService) -> None:
        """A message sent through any node stops the sender's indicator on every node."""

        def tell(user_id: str, to_user_id: str | None) -> None:
            self.broker.broadcast(MESSAGE_SENT, user_id=user_id, to_user_id=to_user_id)

        def heard(args: dict[str, Any]) -> None:
            typing.stop_on_send(str(args["user_id"]), args["to_user_id"])

        typing.tell_other_nodes = tell
        self.broker.on_command(MESSAGE_SENT, heard)


async def build_node(settings: Settings, hub: Hub, db: Database, messages: MessageStore) -> Node:
    assert settings.redis_url is not None
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=settings.node_heartbeat_interval,
    )
    node_id = uuid.uuid4().hex[:12]
    sequencer = Sequencer(
        hub.deliver,
        SequenceFill(SqlCommittedLog(db)),
        await messages.last_seq(),
        settings.sequence_hold,
    )
    broker = RedisBroker(hub, sequencer, redis, node_id, messages.last_seq)
    presence = RedisPresenceStore(
        hub,
        redis,
        node_id,
        broker.publish,
        settings.node_heartbeat_interval,
        settings.node_heartbeat_timeout,
        connected=lambda: broker.connected,
    )
    broker.on_connect.append(presence.register)
    return Node(node_id, redis, sequencer, broker, presence)
