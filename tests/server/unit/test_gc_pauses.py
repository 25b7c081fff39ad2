"""CollectorPauses: every collection of the cycle collector, timed and bucketed by generation,
only while installed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from token_bowl_chat_server.observability import CollectorPauses


class SteppingClock:
    """Each reading ``step`` seconds after the last: every collection lasts ``step``."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Only the test's own gc.collect() calls run collections (and callbacks)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _samples(pauses: CollectorPauses) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(pauses)
    text = generate_latest(registry).decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_pauses_are_bucketed_by_generation_and_duration(collector_off: None) -> None:
    pauses = CollectorPauses(clock=SteppingClock(0.003))
    pauses.install()
    try:
        gc.collect(2)
        gc.collect(2)
        gc.collect(0)
    finally:
        pauses.uninstall()
    samples = _samples(pauses)
    full = 'generation="2"'
    assert samples[f"tbc_gc_pause_seconds_count{{{full}}}"] == 2
    assert samples[f"tbc_gc_pause_seconds_sum{{{full}}}"] == pytest.approx(0.006)
    # 3 ms: above the 2.5 ms bound, within the 5 ms one; the buckets are cumulative.
    assert samples[f'tbc_gc_pause_seconds_bucket{{{full},le="0.0025"}}'] == 0
    assert samples[f'tbc_gc_pause_seconds_bucket{{{full},le="0.005"}}'] == 2
    assert samples[f'tbc_gc_pause_seconds_bucket{{{full},le="+Inf"}}'] == 2
    assert samples['tbc_gc_pause_seconds_count{generation="0"}'] == 1
    assert samples['tbc_gc_pause_seconds_count{generation="1"}'] == 0


def test_a_bound_itself_falls_in_its_bucket(collector_off: None) -> None:
    pauses = CollectorPauses(clock=SteppingClock(0.001))
    pauses.install()
    try:
        gc.collect(1)
    finally:
        pauses.uninstall()
    samples = _samples(pauses)
    assert samples['tbc_gc_pause_seconds_bucket{generation="1",le="0.0005"}'] == 0
    assert samples['tbc_gc_pause_seconds_bucket{generation="1",le="0.001"}'] == 1


def test_nothing_is_timed_once_uninstalled(collector_off: None) -> None:
    pauses = CollectorPauses()
    pauses.install()
    pauses.install()  # installed once, however often asked
    gc.collect()
    pauses.uninstall()
    gc.collect()
    pauses.uninstall()  # and uninstalling twice is harmless
    samples = _samples(pauses)
    assert samples['tbc_gc_pause_seconds_count{generation="2"}'] == 1
    assert samples['tbc_gc_pause_seconds_sum{generation="2"}'] > 0
