"""The Redis-backed limiter: one budget per key shared by every node, failing open."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tidings.pipeline.rate_limits import RedisRateLimiter

REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        await client.ping()
    except OSError:
        await client.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"tidings-test:{secrets.token_hex(6)}:"
    yield prefix
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_requests_within_the_rate_pass_and_the_next_is_told_how_long_to_wait(
        redis_prefix: str) -> None:
    limiter = RedisRateLimiter.from_url(REDIS_URL, rate=3, period=60, prefix=redis_prefix)
    answers = [await limiter.take("tenant-a") for _ in range(4)]
    await limiter.close()
    assert answers[:3] == [None, None, None]
    assert answers[3] is not None
    assert 19.0 < answers[3] <= 20.0


async def test_each_key_has_its_own_budget(redis_prefix: str) -> None:
    limiter = RedisRateLimiter.from_url(REDIS_URL, rate=1, period=60, prefix=redis_prefix)
    first_a, second_a = await limiter.take("a"), await limiter.take("a")
    first_b = await limiter.take("b")
    await limiter.close()
    assert (first_a, first_b) == (None, None)
    assert second_a is not None


async def test_two_nodes_draw_from_one_budget(redis_prefix: str) -> None:
    node_one = RedisRateLimiter.from_url(REDIS_URL, rate=2, period=60, prefix=redis_prefix)
    node_two = RedisRateLimiter.from_url(REDIS_URL, rate=2, period=60, prefix=redis_prefix)
    answers = [await node_one.take("t"), await node_two.take("t"), await node_one.take("t")]
    await node_one.close()
    await node_two.close()
    assert answers[:2] == [None, None]
    assert answers[2] is not None


async def test_an_unreachable_redis_allows_the_request() -> None:
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:1/0", rate=1, period=60,
                                        prefix="unreachable:")
    answers = [await limiter.take("t"), await limiter.take("t")]
    await limiter.close()
    assert answers == [None, None]
