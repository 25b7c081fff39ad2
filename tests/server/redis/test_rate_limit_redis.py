"""Rate limits in Redis: one bucket per key whichever node takes from it, buckets of different
limits apart, and each node's own buckets while Redis cannot be reached."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from tests.redisserver import RedisServer
from token_bowl_chat_server.realtime.rate_limit_redis import RedisRateLimit


async def test_two_nodes_take_from_one_bucket(redis: Redis) -> None:
    node_a = RedisRateLimit(redis, "send", rate=0.001, burst=3, available=lambda: True)
    node_b = RedisRateLimit(redis, "send", rate=0.001, burst=3, available=lambda: True)
    taken = [await limit.take("alice", 0.0) for limit in (node_a, node_b, node_a)]
    assert taken == [0.0, 0.0, 0.0]
    refused = await node_b.take("alice", 0.0)
    assert refused > 100  # a token every 1000 s
    assert await node_a.take("bob", 0.0) == 0.0  # another key, another bucket


async def test_limits_of_different_names_do_not_share_buckets(redis: Redis) -> None:
    sends = RedisRateLimit(redis, "send", rate=0.001, burst=1, available=lambda: True)
    registrations = RedisRateLimit(redis, "register", rate=0.001, burst=1, available=lambda: True)
    assert await sends.take("127.0.0.1", 0.0) == 0.0
    assert await registrations.take("127.0.0.1", 0.0) == 0.0
    assert await sends.take("127.0.0.1", 0.0) > 0


async def test_without_redis_each_node_counts_on_its_own(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        client = Redis.from_url(server.url, socket_connect_timeout=1.0)
        limit = RedisRateLimit(client, "send", rate=0.001, burst=2, available=lambda: True)
        assert await limit.take("carol", 0.0) == 0.0
        server.kill()
        # Redis gone: the node's own bucket, which starts full; then it runs out too.
        assert [await limit.take("carol", 0.0) for _ in range(2)] == [0.0, 0.0]
        assert await limit.take("carol", 0.0) > 0
        await client.aclose()


async def test_a_node_that_knows_redis_is_away_does_not_try_it(redis: Redis) -> None:
    limit = RedisRateLimit(redis, "send", rate=0.001, burst=1, available=lambda: False)
    assert await limit.take("dave", 0.0) == 0.0
    assert await limit.take("dave", 0.0) > 0
    assert await redis.keys("tbc:rate:*") == []
