"""Rate limiters: a token bucket per key (a tenant now, an SMS app with the pipeline), either in
this process's memory or in Redis so that every node draws from one budget.

``take(key)`` answers None when a request may go, else the seconds to wait. The Redis limiter
uses Redis's own clock inside one Lua script, so nodes with skewed clocks still agree, and it
fails open (allows, logs a warning) when Redis does not answer: an outage of the optional shared
store must not take the API down with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tidings.pipeline.throttle import TokenBuckets

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def take(self, key: str) -> float | None: ...

    async def close(self) -> None: ...


class LocalRateLimiter:
    """Buckets in this process: exact for one node; each node has its own budget."""

    def __init__(self, rate: int, period: float, monotonic: Callable[[], float]) -> None:
        self.buckets = TokenBuckets(rate, period)
        self.monotonic = monotonic

    async def take(self, key: str) -> float | None:
        return self.buckets.try_take(key, self.monotonic())

    async def close(self) -> None:
        return None


# KEYS[1] bucket; ARGV[1] capacity, ARGV[2] tokens per millisecond. Returns the wait in ms.
_TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / per_ms end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return string.format('%.3f', wait)
"""


class RedisRateLimiter:
    """Buckets shared by every node through Redis (``TIDINGS_REDIS_URL``)."""

    def __init__(self, redis: Redis, rate: int, period: float, prefix: str) -> None:
        self._redis = redis
        self._capacity = rate
        self._per_ms = rate / (period * 1000.0)
        self._prefix = prefix
        self._script = redis.register_script(_TAKE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, rate: int, period: float, prefix: str) -> RedisRateLimiter:
        client = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return cls(client, rate, period, prefix)

    async def take(self, key: str) -> float | None:
        try:
            wait_ms = await self._script(keys=[f"{self._prefix}{key}"],
                                         args=[self._capacity, repr(self._per_ms)])
        except (RedisError, OSError) as exc:
            log.warning("rate limiter: Redis unavailable (%s); allowing the request", exc)
            return None
        wait = float(wait_ms) / 1000.0
        return wait if wait > 0 else None

    async def close(self) -> None:
        await self._redis.aclose()
