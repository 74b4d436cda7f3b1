"""``ReportIngest``: concurrent webhooks share one transaction, and one that cannot be applied
fails alone."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.callbacks.steps import sent_message
from tests.conftest import TenantFactory
from tidings.db.models import ChannelAccount, Message
from tidings.domain.states import MessageState
from tidings.pipeline.report_ingest import ReportIngest
from tidings.providers.base import InboundMessage, StatusUpdate
from tidings.runtime import Runtime
from tidings.services import reports


async def _account(runtime: Runtime, app_id: str) -> ChannelAccount:
    async with runtime.read_sessions() as reads:
        found = await reads.get(ChannelAccount, app_id)
    assert found is not None
    return found


async def test_concurrent_webhooks_are_applied_in_one_commit(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    first = await sent_message(runtime, tenant, "prov-0")
    sent = [first] + [await sent_message(runtime, tenant, f"prov-{n}", app_id=first.app_id)
                      for n in range(1, 20)]
    account = await _account(runtime, sent[0].app_id)
    commits: list[int] = []
    ingest = ReportIngest(runtime.sessions, runtime.clock,
                          on_commit=lambda: commits.append(1))
    ingest.start()

    summaries = await asyncio.gather(*(ingest.submit(account, [StatusUpdate(
        f"prov-{n}", MessageState.DELIVERED, "DELIVRD")]) for n in range(20)))
    await ingest.stop()

    assert [summary.applied for summary in summaries] == [1] * 20
    async with runtime.sessions() as session:
        states = (await session.execute(select(Message.provider_message_id, Message.state)
                                        .where(Message.id.in_([s.message_id for s in sent]))
                                        )).all()
    assert {state for _, state in states} == {"delivered"}
    assert len(commits) < 20


async def test_a_webhook_that_cannot_be_applied_fails_alone(
        runtime: Runtime, tenants: TenantFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = await tenants.create()
    sent = await sent_message(runtime, tenant, "prov-1")
    account = await _account(runtime, sent.app_id)
    real_store_inbound = reports.store_inbound

    async def store_inbound(session: AsyncSession, account: ChannelAccount,
                            event: InboundMessage, now: datetime) -> bool:
        if event.provider_message_id == "mo-broken":
            raise RuntimeError("cannot store this one")
        return await real_store_inbound(session, account, event, now)

    monkeypatch.setattr(reports, "store_inbound", store_inbound)
    ingest = ReportIngest(runtime.sessions, runtime.clock)
    ingest.start()

    good, bad = await asyncio.gather(
        ingest.submit(account, [StatusUpdate("prov-1", MessageState.DELIVERED, "DELIVRD")]),
        ingest.submit(account, [InboundMessage("mo-broken", "+14155550100", "12345", "Hi")]),
        return_exceptions=True)
    await ingest.stop()

    assert not isinstance(good, BaseException)
    assert good.applied == 1
    assert isinstance(bad, RuntimeError)
    async with runtime.sessions() as session:
        state = (await session.execute(select(Message.state).where(
            Message.id == sent.message_id))).scalar_one()
    assert state == "delivered"


async def test_submitting_before_start_is_refused(runtime: Runtime) -> None:
    ingest = ReportIngest(runtime.sessions, runtime.clock)
    with pytest.raises(RuntimeError, match="not running"):
        await ingest.submit(ChannelAccount(id="x"), [])
