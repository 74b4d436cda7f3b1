"""Per-app send budgets: a token bucket at the app's rate, in memory (``LocalSendBudget``, on an
injected monotonic clock) or shared by every node through Redis (``RedisSendBudget``, failing
open when Redis does not answer)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.conftest import FakeClock
from tests.fakes.server import free_port
from tidings.pipeline.send_budget import LocalSendBudget, RedisSendBudget

REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
APP = "app-1"
MINUTE = 60.0


# --- in memory -----------------------------------------------------------------------------------


async def test_a_bucket_grants_up_to_its_rate_then_says_how_long_until_the_next_token(
        clock: FakeClock) -> None:
    budget = LocalSendBudget(clock.monotonic)

    assert await budget.take(APP, 10, MINUTE, 4) == (4, 0.0)
    assert await budget.take(APP, 10, MINUTE, 20) == (6, 6.0)
    assert await budget.take(APP, 10, MINUTE, 1) == (0, 6.0)


async def test_a_bucket_refills_at_its_rate_and_never_beyond_its_size(clock: FakeClock) -> None:
    budget = LocalSendBudget(clock.monotonic)
    await budget.take(APP, 10, MINUTE, 10)

    clock.advance(3)
    granted, wait = await budget.take(APP, 10, MINUTE, 10)
    assert granted == 0
    assert wait == pytest.approx(3.0)
    clock.advance(30)
    assert (await budget.take(APP, 10, MINUTE, 10))[0] == 5
    clock.advance(3600)
    assert (await budget.take(APP, 10, MINUTE, 100))[0] == 10


async def test_each_app_has_its_own_bucket(clock: FakeClock) -> None:
    budget = LocalSendBudget(clock.monotonic)
    await budget.take(APP, 3, MINUTE, 3)

    assert await budget.take("app-2", 3, MINUTE, 3) == (3, 20.0)


async def test_changing_an_apps_rate_starts_a_full_bucket_at_the_new_rate(
        clock: FakeClock) -> None:
    budget = LocalSendBudget(clock.monotonic)
    assert (await budget.take(APP, 10, MINUTE, 10))[0] == 10

    assert await budget.take(APP, 20, MINUTE, 50) == (20, 3.0)
    assert (await budget.take(APP, 20, 3600.0, 50))[0] == 20


# --- in Redis ------------------------------------------------------------------------------------


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        await client.ping()
    except OSError:
        await client.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"tidings-test:send:{secrets.token_hex(6)}:"
    yield prefix
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_two_nodes_draw_from_one_bucket_in_redis(redis_prefix: str) -> None:
    first = RedisSendBudget(Redis.from_url(REDIS_URL), prefix=redis_prefix)
    second = RedisSendBudget(Redis.from_url(REDIS_URL), prefix=redis_prefix)
    try:
        assert await first.take(APP, 5, MINUTE, 3) == (3, 0.0)
        granted, wait = await second.take(APP, 5, MINUTE, 5)
        assert granted == 2
        assert 11.5 < wait <= 12.0  # a token every 12 s; Redis's clock ran a little meanwhile
        assert (await first.take(APP, 5, MINUTE, 1))[0] == 0
        assert await second.take("app-2", 5, MINUTE, 5) == (5, 12.0)
    finally:
        await first.close()
        await second.close()


async def test_the_redis_budget_sends_unthrottled_when_redis_does_not_answer(
        caplog: pytest.LogCaptureFixture) -> None:
    budget = RedisSendBudget.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="tidings.pipeline.send_budget"):
            assert await budget.take(APP, 5, MINUTE, 50) == (50, 0.0)
    finally:
        await budget.close()
    assert "Redis unavailable" in caplog.text
