"""``create_tag`` under concurrency: two requests making the same tag give one tag and a 409."""

from __future__ import annotations

import asyncio

from tests.conftest import FakeClock, TenantFactory
from tidings.errors import Conflict
from tidings.runtime import Runtime
from tidings.services.tenant_tags import create_tag, list_tags


async def test_two_concurrent_creations_of_one_tag_make_one_and_a_409(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()

    async def attempt() -> str:
        async with runtime.sessions() as session:
            try:
                await create_tag(session, tenant_id=tenant.tenant_id, name="vip", color=None,
                                 now=clock())
            except Conflict as exc:
                return exc.code
            await session.commit()
        return "created"

    outcomes = await asyncio.gather(attempt(), attempt())

    assert sorted(outcomes) == ["created", "duplicate_tag"]
    async with runtime.sessions() as session:
        tags, total = await list_tags(session, tenant.tenant_id, limit=10, offset=0)
    assert (total, [t.name for t in tags]) == (1, ["vip"])
