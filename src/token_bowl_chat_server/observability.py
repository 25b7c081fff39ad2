"""Where the time goes, as Prometheus histograms the hot paths feed (docs/metrics.md).

One :class:`ServerMetrics` per app, with a registry of its own rather than prometheus-client's
global one, so several apps in one process (the tests) never share or collide on a metric.
Histograms are kept as plain counts (:class:`Counts`) and built into prometheus-client's metric
families when ``/metrics`` is scraped: recording is a bucket search and two additions per group
commit and per stored message, with no lock (prometheus-client's ``Histogram.observe`` takes
one and searches the buckets in Python, a few percent of a REST send's time). Nothing is
recorded per delivered frame: outbox depths are read from the connections at scrape time
(``api/rest/metrics.py``).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
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


class Counts:
    """One histogram's observations as plain numbers. Not thread-safe by design: every
    observation is made on the event loop's thread or in a collector callback, which never
    runs concurrently with another."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # "le": value <= bound
        self.sum += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        bounds = [repr(float(bound)) for bound in self.bounds] + ["+Inf"]  # as "1.0", "0.0005"
        buckets = list(zip(bounds, itertools.accumulate(self.counts), strict=True))
        family.add_metric(labels, buckets, self.sum)


class Histograms(Collector):
    """Histograms without labels, exported from their :class:`Counts` at scrape time."""

    def __init__(self) -> None:
        self._families: list[tuple[str, str, Counts]] = []

    def histogram(self, name: str, documentation: str, bounds: tuple[float, ...]) -> Counts:
        counts = Counts(bounds)
        self._families.append((name, documentation, counts))
        return counts

    def collect(self) -> Iterator[Metric]:
        for name, documentation, counts in self._families:
            family = HistogramMetricFamily(name, documentation)
            counts.add_to(family, [])
            yield family


class ServerMetrics:
    def __init__(self, clock: WallClock = now_micros) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        histograms = Histograms()
        self.commit_seconds = histograms.histogram(
            "tbc_commit_seconds",
            "Duration of one group commit: the write transaction storing a batch of messages",
            LATENCY_BUCKETS,
        )
        self.messages_per_commit = histograms.histogram(
            "tbc_messages_per_commit", "Messages one group commit stored", BATCH_BUCKETS
        )
        self.send_to_queue_seconds = histograms.histogram(
            "tbc_send_to_queue_seconds",
            "From a send's admission to its frame queued on every receiver's outbox on this node",
            LATENCY_BUCKETS,
        )
        self.registry.register(histograms)
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
        self._pauses = [Counts(GC_PAUSE_BUCKETS) for _ in range(GENERATIONS)]

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
        self._pauses[info["generation"]].observe(self._clock() - self._started)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "tbc_gc_pause_seconds",
            "Pauses of the cycle collector (every thread stops while it runs), by generation",
            labels=["generation"],
        )
        for generation, pauses in enumerate(self._pauses):
            pauses.add_to(family, [str(generation)])
        yield family
