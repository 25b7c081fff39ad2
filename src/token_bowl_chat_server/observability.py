"""Where the time goes, as Prometheus histograms the hot paths feed (docs/metrics.md).

One :class:`ServerMetrics` per app, with a registry of its own rather than prometheus-client's
global one, so several apps in one process (the tests) never share or collide on a metric.
Recording costs one ``observe`` (a lock and a bucket search, about a microsecond) per group
commit and per stored message; nothing is recorded per delivered frame: outbox depths are
read from the connections when ``/metrics`` is scraped (``api/rest/metrics.py``).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from token_bowl_chat_server.domain.entities import Message
from token_bowl_chat_server.services.clock import WallClock, now_micros

# Seconds: fsync-bound commits take a fraction of a millisecond on a quiet SSD, several
# milliseconds on a busy or networked disk; seconds mean trouble.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
# The group commit grows with the load, up to TOKEN_BOWL_WRITE_BATCH_MAX.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    def __init__(self, clock: WallClock = now_micros) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        self.commit_seconds = Histogram(
            "tbc_commit_seconds",
            "Duration of one group commit: the write transaction storing a batch of messages",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.messages_per_commit = Histogram(
            "tbc_messages_per_commit",
            "Messages one group commit stored",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.send_to_queue_seconds = Histogram(
            "tbc_send_to_queue_seconds",
            "From a send's admission to its frame queued on every receiver's outbox on this node",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.gc_pauses = CollectorPauses()
        self.registry.register(self.gc_pauses)

    def commit(self, seconds: float, stored: int) -> None:
        """A group commit took ``seconds`` and stored ``stored`` new messages."""
        self.commit_seconds.observe(seconds)
        self.messages_per_commit.observe(stored)

    def queued(self, message: Message) -> None:
        """``message`` (admitted at its ``created_at``) is now queued for its receivers."""
        self.send_to_queue_seconds.observe(max(0, self.clock() - message.created_at) / 1e6)


# Seconds: a young-generation pass takes well under a millisecond; a full one walks every
# object the collector tracks (about 85 per open WebSocket), tens of milliseconds for hundreds.
GC_PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GENERATIONS = 3


class CollectorPauses(Collector):
    """The cycle collector's pauses by generation, timed through ``gc.callbacks``.

    A collection stops the event loop while it runs, so a long one delays every delivery in
    flight (docs/architecture.md, "The garbage collector"). The callback only bumps plain
    numbers: collections never overlap, and it must not wait for a lock that the code it
    interrupted may hold. The histogram is built from them when ``/metrics`` is scraped.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = 0.0
        self._counts = [[0] * (len(GC_PAUSE_BUCKETS) + 1) for _ in range(GENERATIONS)]
        self._sums = [0.0] * GENERATIONS

    def install(self) -> None:
        """Start timing collections (the app's lifespan; :meth:`uninstall` at its end)."""
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        seconds = self._clock() - self._started
        generation = info["generation"]
        self._counts[generation][bisect.bisect_left(GC_PAUSE_BUCKETS, seconds)] += 1
        self._sums[generation] += seconds

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "tbc_gc_pause_seconds",
            "Pauses of the cycle collector (every thread stops while it runs), by generation",
            labels=["generation"],
        )
        bounds = [repr(bound) for bound in GC_PAUSE_BUCKETS] + ["+Inf"]
        for generation, counts in enumerate(self._counts):
            buckets = list(zip(bounds, itertools.accumulate(counts), strict=True))
            family.add_metric([str(generation)], buckets, self._sums[generation])
        yield family
