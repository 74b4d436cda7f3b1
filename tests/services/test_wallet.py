"""``credit_wallet``: the ledger, the never-below-zero rule and concurrent credits."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from tests.conftest import FakeClock, TenantFactory
from tidings.db.models import Wallet, WalletEntry
from tidings.errors import InvalidInput, NotFound
from tidings.runtime import Runtime
from tidings.services.wallet import credit_wallet, get_wallet


async def balance(runtime: Runtime, tenant_id: str) -> tuple[int, int]:
    """``(balance_minor, number of ledger entries)`` as committed."""
    async with runtime.sessions() as session:
        wallet = await session.get(Wallet, tenant_id)
        entries = (await session.execute(select(func.count()).select_from(WalletEntry).where(
            WalletEntry.tenant_id == tenant_id))).scalar_one()
    assert wallet is not None
    return wallet.balance_minor, entries


async def test_credit_adds_to_the_balance_and_records_an_entry(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        entry = await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=1234,
                                    reason="  welcome credit ", now=clock())
        await session.commit()
    assert (entry.amount_minor, entry.balance_after_minor, entry.reason) == \
        (1234, 1234, "welcome credit")
    assert await balance(runtime, tenant.tenant_id) == (1234, 1)


async def test_a_negative_correction_may_take_the_balance_to_exactly_zero(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=100,
                            reason="top-up", now=clock())
        entry = await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=-100,
                                    reason="refund", now=clock())
        await session.commit()
    assert entry.balance_after_minor == 0


async def test_a_correction_below_zero_is_refused_and_changes_nothing(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=100,
                            reason="top-up", now=clock())
        await session.commit()
    async with runtime.sessions() as session:
        with pytest.raises(InvalidInput) as raised:
            await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=-101,
                                reason="too much", now=clock())
        view = await get_wallet(session, tenant.tenant_id)
    assert raised.value.code == "insufficient_balance"
    assert view.balance_minor == 100
    assert await balance(runtime, tenant.tenant_id) == (100, 1)


@pytest.mark.parametrize(("amount", "reason", "field"), [
    pytest.param(0, "nothing", "amount_minor", id="zero-amount"),
    pytest.param(2**63, "huge", "amount_minor", id="amount-past-bigint"),
    pytest.param(10, "", "reason", id="empty-reason"),
    pytest.param(10, "   ", "reason", id="blank-reason"),
    pytest.param(10, "r" * 201, "reason", id="reason-over-200"),
])
async def test_bad_credit_is_refused_naming_the_field(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock, amount: int, reason: str,
        field: str) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        with pytest.raises(InvalidInput) as raised:
            await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=amount,
                                reason=reason, now=clock())
    assert [f.field for f in raised.value.fields] == [field]
    assert await balance(runtime, tenant.tenant_id) == (0, 0)


async def test_a_credit_past_the_maximum_balance_is_refused(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=2**63 - 1,
                            reason="max", now=clock())
        with pytest.raises(InvalidInput):
            await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=1,
                                reason="one more", now=clock())


async def test_crediting_an_unknown_tenant_raises_not_found(
        runtime: Runtime, clock: FakeClock) -> None:
    async with runtime.sessions() as session:
        with pytest.raises(NotFound) as raised:
            await credit_wallet(session, tenant_id="NOSUCHTENANT", amount_minor=10,
                                reason="x", now=clock())
    assert raised.value.code == "tenant_not_found"


async def test_concurrent_credits_never_lose_an_update(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()

    async def credit_once(n: int) -> None:
        async with runtime.sessions() as session:
            await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=100,
                                reason=f"credit {n}", now=clock())
            await session.commit()

    await asyncio.gather(*(credit_once(n) for n in range(10)))

    assert await balance(runtime, tenant.tenant_id) == (1000, 10)
    async with runtime.sessions() as session:
        view = await get_wallet(session, tenant.tenant_id, recent=10)
    assert sorted(e.balance_after_minor for e in view.entries) == list(range(100, 1001, 100))
