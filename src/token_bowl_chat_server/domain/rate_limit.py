"""Per-key token buckets, as a pure function of the time passed in."""

from __future__ import annotations

from dataclasses import dataclass

_PRUNE_EVERY = 1024


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` tokens per second refill a bucket of ``burst``; each action takes one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._takes = 0

    def take(self, key: str, now: float) -> float:
        """Take a token. Returns 0.0 when allowed, else the seconds until one is available."""
        self._takes += 1
        if self._takes % _PRUNE_EVERY == 0:
            self.prune(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def prune(self, now: float) -> None:
        """Forget buckets that have refilled: an idle user costs no memory."""
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
