"""The Redis client gives up a command when its task is cancelled: the server's Redis loops
(presence writer, broker, sequencer) stop by cancellation at shutdown, and a client that
swallowed the cancel would keep them running and hang the stop (redis-py 8.0-8.2 did)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis


async def test_a_task_cancelled_during_commands_stops(redis: Redis) -> None:
    script = redis.register_script("return 1")

    async def commands() -> None:
        while True:
            await script(keys=[], args=[])
            await redis.zadd("tbc:test:cancel", {"member": 1.0})

    loop = asyncio.get_running_loop()
    for attempt in range(300):
        task = loop.create_task(commands())
        # Cancel at different points of the command cycle: before, during, between commands.
        for _ in range(attempt % 7):
            await asyncio.sleep(0)
        await asyncio.sleep(0.0002 * (attempt % 5))
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
            raise AssertionError(f"attempt {attempt}: the cancelled task kept running")
        assert task.cancelled(), f"attempt {attempt}: {task}"
