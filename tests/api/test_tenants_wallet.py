"""``GET /tenants/host-wallet/``: currency, balance in minor units, newest ledger entries."""

from __future__ import annotations

import httpx

from tests.conftest import FakeClock, TenantFactory
from tidings.runtime import Runtime
from tidings.services.wallet import credit_wallet


async def test_a_new_tenant_has_an_empty_wallet(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    response = await client.get("/tenants/host-wallet/", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"currency": "USD", "balance_minor": 0, "entries": []}


async def test_wallet_shows_the_balance_and_entries_newest_first(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        top_up = await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=5000,
                                     reason="top-up", now=clock())
        clock.advance(60)
        fix = await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=-250,
                                  reason="correction", now=clock())
        await session.commit()

    response = await client.get("/tenants/host-wallet/", headers=tenant.headers)

    assert response.json() == {"currency": "USD", "balance_minor": 4750, "entries": [
        {"id": fix.id, "amount_minor": -250, "balance_after_minor": 4750,
         "reason": "correction", "created_at": "2026-11-24T12:01:00Z"},
        {"id": top_up.id, "amount_minor": 5000, "balance_after_minor": 5000,
         "reason": "top-up", "created_at": "2026-11-24T12:00:00Z"}]}


async def test_wallet_lists_only_the_20_newest_entries(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        for n in range(1, 23):
            clock.advance(1)
            await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=n,
                                reason=f"credit {n}", now=clock())
        await session.commit()
    body = (await client.get("/tenants/host-wallet/", headers=tenant.headers)).json()
    assert body["balance_minor"] == sum(range(1, 23))
    assert [e["reason"] for e in body["entries"]] == [f"credit {n}" for n in range(22, 2, -1)]
