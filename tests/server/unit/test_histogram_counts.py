"""The server's lock-free histograms export exactly what prometheus-client's own ``Histogram``
exports for the same observations: bucket bounds, cumulative counts (a value equal to a bound
counts in that bucket), the sum and the count."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from token_bowl_chat_server.observability import BATCH_BUCKETS, LATENCY_BUCKETS, Histograms


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_the_export_matches_prometheus_clients_histogram() -> None:
    rng = random.Random(7)
    for bounds in (LATENCY_BUCKETS, BATCH_BUCKETS):
        ours, theirs = CollectorRegistry(), CollectorRegistry()
        histograms = Histograms()
        counts = histograms.histogram("tbc_probe", "probe", bounds)
        ours.register(histograms)
        reference = Histogram("tbc_probe", "probe", buckets=bounds, registry=theirs)
        values = [0, *bounds, bounds[-1] * 10] + [
            rng.uniform(0, bounds[-1] * 1.2) for _ in range(500)
        ]
        for value in values:
            counts.observe(value)
            reference.observe(value)
        assert _samples(ours) == _samples(theirs)
        exported = _samples(ours)
        assert exported[("tbc_probe_bucket", (("le", "+Inf"),))] == len(values)
        assert exported[("tbc_probe_count", ())] == len(values)


def test_an_unobserved_histogram_exports_zeros() -> None:
    registry = CollectorRegistry()
    histograms = Histograms()
    histograms.histogram("tbc_empty", "nothing yet", LATENCY_BUCKETS)
    registry.register(histograms)
    exported = _samples(registry)
    assert exported[("tbc_empty_count", ())] == 0
    assert exported[("tbc_empty_sum", ())] == 0
    assert all(value == 0 for (name, _), value in exported.items() if name == "tbc_empty_bucket")
