"""Releases seq-carrying frames to this node's hub in ``seq`` order, with no gap.

With several server processes, commit order and arrival order differ: node B's seq 6 can
reach this node (through Redis) before node A's seq 5. Every seq is dense, because messages,
edits and deletes all take it from the counter row inside their transaction and a rolled
back transaction gives it back; so a missing seq below one that has arrived is a frame still
on its way, or one that was lost (Redis down, a node killed between commit and publish).
Frames above a gap are held; a gap that lasts longer than ``hold`` seconds is filled from
the database, which holds everything below any committed seq (commit order is seq order).
A seq the database has no frame for (a message deleted since) is passed over.

The sequencer starts at the database's last seq: nothing older is delivered live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from token_bowl_chat_server.realtime.audience import Audience

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeqFrame:
    seq: int
    audience: Audience
    text: str


Deliver = Callable[[Audience, str, int], None]
# The frames of the committed seqs in [first, last], read from the database, in any order.
Fill = Callable[[int, int], Awaitable[list[SeqFrame]]]

FILL_PAGE = 500
# Held frames beyond which a gap is filled at once instead of after ``hold``.
MAX_HELD = 10_000
_MAX_RETRY = 5.0


class Sequencer:
    def __init__(self, deliver: Deliver, fill: Fill, last_seq: int, hold: float) -> None:
        self.deliver = deliver
        self.fill = fill
        self.hold = hold
        self.next_seq = last_seq + 1
        self._held: dict[int, SeqFrame] = {}
        # The highest seq known to be committed without its frame being here (see catch_up).
        self._known_last = last_seq
        self._timer: asyncio.TimerHandle | None = None
        self._timer_for = 0  # the next_seq the timer was set for: a gap that moved is younger
        self._filling: asyncio.Task[None] | None = None
        self._retry = hold
        self._failing = False
        self.released = 0  # frames handed to the hub
        self.filled = 0  # of those, frames read from the database
        self.duplicates = 0  # frames that came after their seq was released
        self.passed_over = 0  # seqs with no frame in the database
        self.fills = 0  # gaps filled from the database

    def offer(self, seq: int, audience: Audience, text: str) -> None:
        """A frame carrying ``seq``, from this node's commit or another's. Never blocks."""
        if seq < self.next_seq or seq in self._held:
            self.duplicates += 1
            return
        if seq == self.next_seq:
            self._release(SeqFrame(seq, audience, text))
            self._drain()
            return
        self._held[seq] = SeqFrame(seq, audience, text)
        self._watch_gap(urgent=len(self._held) > MAX_HELD)

    def catch_up(self, last_committed: int) -> None:
        """Seqs up to ``last_committed`` are committed (the database said so): fill what has
        not arrived, now. Used while the broker cannot receive and after it reconnects."""
        if last_committed >= self.next_seq:
            self._known_last = max(self._known_last, last_committed)
            self._watch_gap(urgent=True)

    @property
    def held(self) -> int:
        return len(self._held)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._filling is not None:
            self._filling.cancel()

    async def wait_idle(self) -> None:
        """Until no fill is running (tests, shutdown)."""
        while self._filling is not None:
            await asyncio.shield(self._filling)

    def _release(self, frame: SeqFrame) -> None:
        self.next_seq = frame.seq + 1
        self.released += 1
        try:
            self.deliver(frame.audience, frame.text, frame.seq)
        except Exception:
            logger.exception("delivering seq %s failed", frame.seq)

    def _drain(self) -> None:
        while self._held:
            frame = self._held.pop(self.next_seq, None)
            if frame is None:
                return
            self._release(frame)
        if self._timer is not None and not self._gap():
            self._timer.cancel()
            self._timer = None

    def _gap(self) -> bool:
        return bool(self._held) or self._known_last >= self.next_seq

    def _watch_gap(self, urgent: bool) -> None:
        if self._filling is not None:
            return  # the running fill looks again when it is done
        if urgent:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._start_fill()
        elif self._timer is None:
            self._arm()

    def _arm(self) -> None:
        self._timer_for = self.next_seq
        self._timer = asyncio.get_running_loop().call_later(self._retry, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        if not self._gap():
            return
        if self.next_seq != self._timer_for and not self._failing:
            self._arm()  # the gap it was set for closed; the one now open gets its own time
            return
        self._start_fill()

    def _start_fill(self) -> None:
        self._timer = None
        if self._filling is None and self._gap():
            self._filling = asyncio.get_running_loop().create_task(self._fill_gaps())

    async def _fill_gaps(self) -> None:
        try:
            while self._gap() and self.next_seq not in self._held:
                first = self.next_seq
                upper = min(self._held) - 1 if self._held else self._known_last
                last = min(upper, first + FILL_PAGE - 1)
                frames = await self.fill(first, last)
                self.fills += 1
                found = {frame.seq: frame for frame in frames}
                # Frames that arrived meanwhile moved next_seq on; the rest come from here.
                while self.next_seq <= last:
                    seq = self.next_seq
                    frame = self._held.pop(seq, None)
                    if frame is None and seq in found:
                        frame = found[seq]
                        self.filled += 1
                    if frame is None:
                        self.passed_over += 1
                        self.next_seq = seq + 1
                    else:
                        self._release(frame)
                self._drain()
            if self._failing:
                logger.info("sequencer: filling gaps from the database works again")
            self._failing = False
            self._retry = self.hold
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The database is down: try again later, slower each time, and say so once.
            if not self._failing:
                logger.warning("sequencer: cannot fill a gap from the database (%s)", exc)
            self._failing = True
            self._retry = min(self._retry * 2, _MAX_RETRY)
        finally:
            self._filling = None
        if self._gap() and self.next_seq in self._held:
            self._drain()
        if self._gap():
            self._watch_gap(urgent=False)
