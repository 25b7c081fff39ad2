"""Group commit: callers that arrive while a flush runs share the next one.

There is no timer: a lone caller is flushed at once, and under load the batch grows by itself
to whatever arrived during the previous flush (up to ``max_batch``).

One caller's item must never fail the others' (a row the database refuses rolls back the
whole shared transaction): a failed flush of several items is split in two and each half
flushed again, in order, down to single items, so only the items that fail alone fail. The
flush function must therefore leave nothing behind when it raises (one transaction, rolled
back), and must raise only for the storing part: whatever it does after its commit may not
raise, or a stored batch would be stored again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        max_batch: int,
        isolate: Callable[[Exception], bool] = lambda _: True,
    ) -> None:
        """``isolate(exc)``: whether a flush failing with ``exc`` may be the fault of one of
        its items, so that retrying the items apart can help (False for "the database is
        unavailable", which fails every item alike)."""
        self._flush = flush
        self._max_batch = max_batch
        self._isolate = isolate
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.splits = 0  # failed flushes of several items that were split and retried

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for the flush that contains it.

        Raises what flushing ``item`` on its own raised, never another item's failure. The
        item is flushed even if the caller is cancelled meanwhile: it is queued, and a
        cancelled future only loses its result.
        """
        return await self.enqueue(item)

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` without waiting: the future holds what :meth:`submit` would return.

        Items are flushed in the order they were queued, so a caller that queues several
        (a pipelining connection) has them stored in that order, sharing flushes. The item
        is flushed whether or not anyone awaits the future.
        """
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="batcher")
        return future

    async def _run(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            await self._flush_isolating(batch, _Isolation())

    async def _flush_isolating(
        self, batch: list[tuple[T, asyncio.Future[R]]], state: _Isolation
    ) -> None:
        """Flush ``batch``; on failure, bisect it so each failure reaches only its own items.

        The halves are flushed one after the other, first half first, so items are still
        stored in submission order. One bad item in a batch of n costs about 2 log2(n) extra
        flushes. When single items keep failing with nothing succeeding in between, the fault
        is not in the items (the database is down or locked): the rest of the batch then
        fails with that error at once rather than after ~2n slow attempts.
        """
        if state.gave_up is not None:
            _fail(batch, state.gave_up)
            return
        try:
            results = list(await self._flush([item for item, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"flush returned {len(results)} results for {len(batch)}")
        except Exception as exc:
            if len(batch) == 1 or not self._isolate(exc):
                _fail(batch, exc)
                state.failures_in_a_row += 1
                if state.failures_in_a_row >= _GIVE_UP_AFTER:
                    state.gave_up = exc
                return
            self.splits += 1
            if not state.split:  # once per batch, not once per level of the bisection
                state.split = True
                logger.warning("flush of %d items failed (%r); retrying in halves", len(batch), exc)
            middle = len(batch) // 2
            await self._flush_isolating(batch[:middle], state)
            await self._flush_isolating(batch[middle:], state)
            return
        state.failures_in_a_row = 0
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def drain(self) -> None:
        """Wait until everything queued so far is flushed (used at shutdown)."""
        while self._runner is not None and not self._runner.done():
            await asyncio.shield(self._runner)


# Single items failing in a row, with no flush succeeding between them, after which a batch
# stops isolating: more bad items than that side by side is taken for a fault of the database.
_GIVE_UP_AFTER = 3


class _Isolation:
    """Progress of isolating the failures of one batch."""

    def __init__(self) -> None:
        self.failures_in_a_row = 0
        self.gave_up: Exception | None = None
        self.split = False


def _fail(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
