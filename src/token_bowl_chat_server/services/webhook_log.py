"""Writes finished webhook deliveries to the database, off every send path.

Workers call :meth:`DeliveryLog.add`, which only appends to a bounded in-memory buffer. One
task takes whatever has piled up and stores it in a single transaction (and trims each
user's log to its newest ``keep``), so a burst of deliveries costs a few writes, not one per
delivery, and a slow database delays the log, never a message or a delivery. When the
buffer is full, new records are dropped and counted (``dropped``); the log is informative,
the deliveries themselves do not depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from token_bowl_chat_server.domain.errors import DomainError
from token_bowl_chat_server.domain.webhook_policy import DeliveryRecord

logger = logging.getLogger(__name__)


class DeliveryRecords(Protocol):
    async def record(self, records: Sequence[DeliveryRecord], keep: int) -> int: ...


class DeliveryLog:
    def __init__(self, store: DeliveryRecords, *, keep: int = 50, buffer: int = 10_000) -> None:
        self._store = store
        self._keep = keep
        self._buffer_size = buffer
        self._pending: list[DeliveryRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-delivery-log")

    def add(self, record: DeliveryRecord) -> None:
        """Queue ``record`` for writing. Never blocks, never raises."""
        if len(self._pending) >= self._buffer_size:
            self.dropped += 1
            return
        self._pending.append(record)
        self._wake.set()

    async def stop(self, grace: float = 2.0) -> None:
        """Write what is pending (for at most ``grace`` seconds), then end the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            async with asyncio.timeout(grace):
                await task
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            logger.warning("webhook delivery log: %d record(s) not stored", len(self._pending))

    async def _run(self) -> None:
        while not (self._stopping and not self._pending):
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self.written += await self._store.record(batch, self._keep)
        except DomainError as exc:  # StorageUnavailable: the database is down or full
            self.dropped += len(batch)
            logger.warning("webhook delivery log: %d record(s) not stored: %s", len(batch), exc)
