"""Rate limits of one process: its own token buckets (``domain/rate_limit.py``), behind the
same awaitable face as the Redis buckets every node shares (``rate_limit_redis.py``)."""

from __future__ import annotations

from token_bowl_chat_server.domain.rate_limit import RateLimiter


class MemoryRateLimit:
    def __init__(self, rate: float, burst: int) -> None:
        self.limiter = RateLimiter(rate, burst)

    async def take(self, key: str, now: float) -> float:
        """0.0 when allowed, else the seconds until a token is available."""
        return self.limiter.take(key, now)
