"""Per-app send budgets: a token bucket per channel account, at that account's own rate.

The dispatcher asks for as many tokens as it has due messages for an account and sends what it
is granted, so one call covers a whole batch. In memory for one node, or in Redis
(``TIDINGS_REDIS_URL``) so that every node draws from the same budget; the Redis budget uses
Redis's clock inside one Lua script and fails open (grants, logs a warning) when Redis does not
answer, because an outage of the optional shared store must not stop delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class SendBudget(Protocol):
    async def take(self, key: str, rate: int, period: float, want: int) -> tuple[int, float]:
        """Take up to ``want`` tokens from ``key``'s bucket (``rate`` per ``period`` seconds,
        bursting to ``rate``): ``(granted, seconds until the next token)``; the wait is 0 when
        tokens remain."""
        ...

    async def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float
    rate: int
    period: float


class LocalSendBudget:
    """Buckets in this process's memory; ``monotonic`` is injected for tests."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, key: str, rate: int, period: float, want: int) -> tuple[int, float]:
        now = self._monotonic()
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.rate, bucket.period) != (rate, period):
            bucket = self._buckets[key] = _Bucket(float(rate), now, rate, period)
        per_second = rate / period
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.updated) * per_second)
        bucket.updated = now
        granted = min(want, int(bucket.tokens))
        bucket.tokens -= granted
        wait = 0.0 if bucket.tokens >= 1 else (1.0 - bucket.tokens) / per_second
        return granted, wait

    async def close(self) -> None:
        return None


# KEYS[1] bucket; ARGV capacity, tokens per ms, wanted. Returns "granted wait_ms".
_TAKE_MANY = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'cap')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if tonumber(state[3]) ~= capacity then tokens = math.min(tokens, capacity) end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
local wait = 0
if tokens < 1 then wait = (1 - tokens) / per_ms end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', now, 'cap', capacity)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return granted .. ' ' .. string.format('%.3f', wait)
"""


class RedisSendBudget:
    """Buckets shared by every node through Redis."""

    def __init__(self, redis: Redis, prefix: str = "tidings:send:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_TAKE_MANY)

    @classmethod
    def from_url(cls, url: str) -> RedisSendBudget:
        return cls(Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0))

    async def take(self, key: str, rate: int, period: float, want: int) -> tuple[int, float]:
        try:
            answer = await self._script(keys=[f"{self._prefix}{key}"],
                                        args=[rate, repr(rate / (period * 1000.0)), want])
        except (RedisError, OSError) as exc:
            log.warning("send budget: Redis unavailable (%s); sending unthrottled", exc)
            return want, 0.0
        granted, wait_ms = (answer.decode() if isinstance(answer, bytes) else answer).split()
        return int(granted), float(wait_ms) / 1000.0

    async def close(self) -> None:
        await self._redis.aclose()
