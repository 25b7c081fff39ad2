"""``token-bowl admin create`` beside a deployment on Redis: the key it replaces reaches every
node as the same close command a node would broadcast."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from tests.redisserver import RedisServer
from token_bowl_chat_server.admin_tool import create_admin
from token_bowl_chat_server.realtime.broker_redis import CHANNEL
from token_bowl_chat_server.realtime.cluster_codec import CommandEnvelope, decode_batch
from token_bowl_chat_server.settings import Settings


async def test_promoting_again_closes_the_accounts_sockets_on_every_node(
    tmp_path: Path, redis: Redis, redis_server: RedisServer
) -> None:
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}", REDIS_URL=redis_server.url
    )
    first = await create_admin(settings, "boss")
    pubsub = redis.pubsub()
    await pubsub.subscribe(CHANNEL)
    try:
        again = await create_admin(settings, "boss")  # a new key: the old one's sockets go
        assert again.user.id == first.user.id and not again.created
        async with asyncio.timeout(10):
            message = None
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    commands = decode_batch(message["data"])
    assert [c.name for c in commands if isinstance(c, CommandEnvelope)] == ["close_user"]
    assert isinstance(commands[0], CommandEnvelope)
    assert commands[0].args["user_id"] == first.user.id
