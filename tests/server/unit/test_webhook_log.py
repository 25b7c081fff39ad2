"""The delivery log writes finished deliveries in batches, off the workers' path."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tests.waiting import eventually
from token_bowl_chat_server.domain.errors import StorageUnavailable
from token_bowl_chat_server.domain.webhook_policy import DeliveryOutcome, DeliveryRecord
from token_bowl_chat_server.services.webhook_log import DeliveryLog


def record(n: int) -> DeliveryRecord:
    return DeliveryRecord(
        id=f"d{n}",
        user_id="u",
        message_id=f"m{n}",
        url="https://hooks.example",
        outcome=DeliveryOutcome.DELIVERED,
        attempts=1,
        status_code=200,
        error=None,
        created_at=n,
        finished_at=n,
    )


class Store:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.keeps: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def record(self, records: Sequence[DeliveryRecord], keep: int) -> int:
        await self.gate.wait()
        if self.fail:
            raise StorageUnavailable("disk full")
        self.batches.append([r.id for r in records])
        self.keeps.append(keep)
        return len(records)


async def test_records_added_while_a_write_runs_go_in_one_next_batch() -> None:
    store = Store()
    log = DeliveryLog(store, keep=7)
    log.start()
    store.gate.clear()
    log.add(record(1))
    await eventually(lambda: log._pending == [], what="first batch taken")
    for n in (2, 3, 4):
        log.add(record(n))  # never blocks, while the first write is held
    store.gate.set()
    await eventually(lambda: log.written == 4)
    assert store.batches == [["d1"], ["d2", "d3", "d4"]]
    assert store.keeps == [7, 7]
    await log.stop()


async def test_a_full_buffer_drops_and_stop_flushes_what_is_pending() -> None:
    store = Store()
    log = DeliveryLog(store, buffer=2)
    for n in (1, 2, 3):  # not started: nothing is written yet
        log.add(record(n))
    assert log.dropped == 1
    log.start()
    await log.stop(grace=5)
    assert store.batches == [["d1", "d2"]] and log.written == 2


async def test_a_failed_write_is_counted_and_the_log_keeps_going() -> None:
    store = Store()
    store.fail = True
    log = DeliveryLog(store)
    log.start()
    log.add(record(1))
    await eventually(lambda: log.dropped == 1)
    store.fail = False
    log.add(record(2))
    await eventually(lambda: log.written == 1)
    assert store.batches == [["d2"]]
    await log.stop()


async def test_stop_gives_up_after_the_grace() -> None:
    store = Store()
    store.gate.clear()  # the database never answers
    log = DeliveryLog(store)
    log.start()
    log.add(record(1))
    async with asyncio.timeout(5):
        await log.stop(grace=0.05)
    assert log.written == 0
