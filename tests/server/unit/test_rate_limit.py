from __future__ import annotations

import pytest

from token_bowl_chat_server.domain.rate_limit import RateLimiter


def test_burst_then_refill_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)
    assert limiter.take("b", now=0.0) == 0.0  # buckets are per key
    assert limiter.take("a", now=0.5) == 0.0
    assert limiter.take("a", now=0.5) == pytest.approx(0.5)


def test_refilled_buckets_are_pruned() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    limiter.take("idle", now=0.0)
    limiter.take("busy", now=0.0)
    limiter.take("busy", now=0.0)
    limiter.prune(now=1.5)  # idle refilled (1 + 1.5 >= 2); busy has 1.5 of 2
    assert limiter.take("busy", now=1.5) == 0.0
    assert limiter.take("busy", now=1.5) == pytest.approx(0.5)
    assert set(limiter._buckets) == {"busy"}
