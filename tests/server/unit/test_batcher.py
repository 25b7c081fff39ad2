from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from token_bowl_chat_server.services.batching import Batcher


async def test_callers_arriving_during_a_flush_share_the_next_one() -> None:
    flushed: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int]:
        flushed.append(list(items))
        if len(flushed) == 1:
            await gate.wait()
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(flush, max_batch=3)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 10
    assert [await task for task in rest] == [20, 30, 40, 50, 60]
    assert flushed == [[1], [2, 3, 4], [5, 6]]


async def test_a_failed_flush_fails_its_callers_only() -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        if 2 in items:
            raise RuntimeError("disk full")
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, max_batch=1)
    results = await asyncio.gather(
        batcher.submit(1), batcher.submit(2), batcher.submit(3), return_exceptions=True
    )
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], RuntimeError)


async def test_cancelled_caller_still_gets_its_item_flushed() -> None:
    flushed: list[int] = []
    gate = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int]:
        await gate.wait()
        flushed.extend(items)
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, max_batch=10)
    task = asyncio.create_task(batcher.submit(7))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    await batcher.drain()
    assert flushed == [7]
