"""The per-tenant API rate limit (``TIDINGS_API_RATE_LIMIT``), here 3 requests a minute."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import FakeClock, TenantFactory
from tidings.config import Settings
from tidings.domain.roles import Role


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_rate_limit": "3/min"})


async def test_the_request_past_the_limit_answers_429_with_retry_after(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    answers = [await client.get("/tenants/roles/", headers=tenant.headers) for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    limited = answers[3]
    assert limited.json() == {"detail": "rate limit of 3/min exceeded", "code": "rate_limited"}
    assert limited.headers["Retry-After"] == "20"


async def test_another_tenant_keeps_its_own_budget(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    busy, quiet = await tenants.create(), await tenants.create()
    for _ in range(3):
        await client.get("/tenants/roles/", headers=busy.headers)
    assert (await client.get("/tenants/roles/", headers=busy.headers)).status_code == 429
    assert (await client.get("/tenants/roles/", headers=quiet.headers)).status_code == 200


async def test_every_credential_of_a_tenant_draws_from_one_budget(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    viewer = await tenants.key(tenant, Role.VIEWER)
    tokens = (await client.post("/token/", json={"email": tenant.owner_email,
                                                 "password": tenant.password})).json()
    by_jwt = {"Authorization": f"Bearer {tokens['access']}"}
    answers = [await client.get("/tenants/roles/", headers=headers)
               for headers in (tenant.headers, viewer, by_jwt, viewer)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]


async def test_requests_pass_again_once_tokens_refill(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    for _ in range(3):
        await client.get("/tenants/roles/", headers=tenant.headers)
    limited = await client.get("/tenants/roles/", headers=tenant.headers)

    clock.advance(int(limited.headers["Retry-After"]))

    assert (await client.get("/tenants/roles/", headers=tenant.headers)).status_code == 200
    assert (await client.get("/tenants/roles/", headers=tenant.headers)).status_code == 429
    clock.advance(60)
    answers = [await client.get("/tenants/roles/", headers=tenant.headers) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]


async def test_unauthenticated_requests_and_operations_endpoints_spend_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    for _ in range(5):
        assert (await client.get("/tenants/roles/",
                                 headers={"Authorization": "Bearer jc_live_wrong"})
                ).status_code == 401
        assert (await client.get("/health")).status_code == 200
    answers = [await client.get("/tenants/roles/", headers=tenant.headers) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
