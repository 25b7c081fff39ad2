"""Token buckets in Redis, shared by every node: a user's sends (or an address's
registrations) count against one bucket whichever process takes them.

The bucket is the same rule as ``domain/rate_limit.py`` (``rate`` tokens a second refill up to
``burst``; each action takes one), run inside Redis by a script, on Redis's clock, so nodes
whose clocks differ still agree. A bucket that has refilled expires by itself.

While Redis is away each node falls back to its own buckets (the limit then holds per node,
not per deployment) rather than refusing or letting everything through.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from token_bowl_chat_server.domain.rate_limit import RateLimiter

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst. Returns the seconds to wait, as a
# string (a Lua number would come back truncated to an integer); "0" when a token was taken.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return tostring(wait)
"""


class RedisRateLimit:
    """``name`` keeps the buckets of one limit apart from another's (sends, registrations)."""

    def __init__(
        self,
        redis: Redis,
        name: str,
        rate: float,
        burst: int,
        available: Callable[[], bool],
    ) -> None:
        self.redis = redis
        self.prefix = f"tbc:rate:{name}:"
        self.rate = rate
        self.burst = burst
        # Whether Redis is reachable now (the broker's view): no time lost trying it when not.
        self.available = available
        self.local = RateLimiter(rate, burst)
        # A full bucket's refill time, plus a second: after it, the key is not worth keeping.
        self._expire_ms = math.ceil(burst / rate * 1000) + 1000
        self._script = redis.register_script(_TAKE)
        self._failing = False

    async def take(self, key: str, now: float) -> float:
        """Take a token. 0.0 when allowed, else the seconds until one is available.

        ``now`` (monotonic seconds) only serves the per-node fallback."""
        if self.available():
            try:
                wait = await self._script(
                    keys=[self.prefix + key], args=[self.rate, self.burst, self._expire_ms]
                )
                self._failing = False
                return float(wait)
            except (RedisError, OSError) as exc:
                if not self._failing:
                    logger.warning(
                        "rate limit %s: Redis unavailable (%s); per node", self.prefix, exc
                    )
                self._failing = True
        return self.local.take(key, now)
