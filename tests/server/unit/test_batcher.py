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


async def _shared_batch(batcher: Batcher[int, int], items: list[int]) -> list[object]:
    """Submit ``items`` so that they all land in one flush, behind a first item 0."""
    tasks = [asyncio.create_task(batcher.submit(0))]
    await asyncio.sleep(0)  # 0 is being flushed alone; the rest queue behind it
    tasks += [asyncio.create_task(batcher.submit(n)) for n in items]
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_bad_item_fails_alone_and_the_rest_are_stored_in_order() -> None:
    stored: list[int] = []
    attempts: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        attempts.append(list(items))
        if 13 in items:  # the database refuses this row: the transaction rolls back
            raise ValueError("bad row 13")
        stored.extend(items)
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(flush, max_batch=100)
    items = list(range(1, 33))
    results = await _shared_batch(batcher, items)

    assert attempts[1] == items  # they shared one flush, which failed
    assert isinstance(results[13], ValueError)
    assert [r for i, r in enumerate(results) if i != 13] == [n * 10 for n in [0, *items] if n != 13]
    assert stored == [0, *[n for n in items if n != 13]]  # each once, in submission order
    assert batcher.splits <= 2 * 5  # bisected: about 2 log2(32) retries, not one per item


async def test_a_database_fault_fails_the_batch_without_retrying_every_item() -> None:
    attempts = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal attempts
        attempts += 1
        if items != [0]:
            raise OSError("disk I/O error")
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, max_batch=256)
    results = await _shared_batch(batcher, list(range(1, 257)))
    assert results[0] == 0
    assert all(isinstance(r, OSError) for r in results[1:])
    assert attempts < 30  # ~log2(256) splits, then it stops isolating; not ~511 attempts


async def test_a_flush_returning_the_wrong_number_of_results_fails_its_callers() -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        return []

    batcher: Batcher[int, int] = Batcher(flush, max_batch=10)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(batcher.submit(1), 5)


async def test_a_failure_that_cannot_be_an_items_fault_is_not_retried() -> None:
    attempts: list[int] = []

    async def flush(items: Sequence[int]) -> list[int]:
        attempts.append(len(items))
        if items != [0]:
            raise ConnectionError("database unreachable")
        return list(items)

    batcher: Batcher[int, int] = Batcher(
        flush, max_batch=64, isolate=lambda exc: not isinstance(exc, ConnectionError)
    )
    results = await _shared_batch(batcher, list(range(1, 65)))
    assert all(isinstance(r, ConnectionError) for r in results[1:])
    assert attempts == [1, 64]  # the shared flush failed once, and was not split


async def test_items_queued_without_waiting_keep_their_order_and_share_flushes() -> None:
    flushed: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        flushed.append(list(items))
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(flush, max_batch=100)
    futures = [batcher.enqueue(n) for n in range(1, 6)]  # one caller, nobody waiting yet
    assert [await future for future in futures] == [10, 20, 30, 40, 50]
    assert flushed == [[1, 2, 3, 4, 5]]
