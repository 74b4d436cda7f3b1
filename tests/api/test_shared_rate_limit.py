"""With ``TIDINGS_REDIS_URL`` set, every API node draws a tenant's requests from one budget."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import FakeClock, TenantFactory
from tests.pipeline.test_redis_rate_limiter import REDIS_URL
from tidings.app import create_app
from tidings.config import Settings
from tidings.runtime import Runtime


@pytest.fixture
async def redis_settings(settings: Settings) -> Settings:
    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        await probe.ping()
    except OSError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    finally:
        await probe.aclose()
    # Buckets are keyed by tenant id, and every test makes new tenants: nothing to clean up.
    return settings.model_copy(update={"redis_url": REDIS_URL, "api_rate_limit": "2/min"})


async def test_two_nodes_share_one_tenant_budget_through_redis(
        redis_settings: Settings, clock: FakeClock, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    nodes = [Runtime.build(redis_settings, clock) for _ in range(2)]
    apps = [create_app(redis_settings, run_workers=False, runtime=node) for node in nodes]
    statuses = []
    try:
        for app in (apps[0], apps[1], apps[0]):
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://node") as http:
                statuses.append((await http.get("/tenants/roles/",
                                                 headers=tenant.headers)).status_code)
    finally:
        for node in nodes:
            await node.close()
    assert statuses == [200, 200, 429]
