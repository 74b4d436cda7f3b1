"""The SMS pipeline's periodic upkeep (``services.sms_upkeep``, run by the scheduler): lease
recovery, expiry of held messages, daily counters at the tenant's midnight, the simulator's
reports, and delivery reports that arrive before their message's provider id is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import FakeClock, TenantFactory
from tests.pipeline.test_dispatcher import (
    history,
    load_one,
    make_app,
    one_round,
    queue,
    settle,
    states,
)
from tidings.db.models import ChannelAccount, Message, Tenant, UnmatchedReport
from tidings.domain.states import MessageState
from tidings.pipeline.dispatcher import Dispatcher
from tidings.providers.base import StatusUpdate
from tidings.runtime import Runtime
from tidings.services.reports import apply_status_updates, apply_webhook_events
from tidings.services.sms_upkeep import (
    deliver_simulator_reports,
    expire_overdue,
    recover_expired_leases,
    reset_daily_counters,
    sweep_unmatched_reports,
)


async def run_upkeep(runtime: Runtime,
                     job: Callable[[AsyncSession, datetime], Awaitable[int]]) -> int:
    """Run one upkeep use case as its scheduler job does: one transaction, committed."""
    async with runtime.sessions() as session:
        count = await job(session, runtime.clock())
        await session.commit()
    return count


async def unmatched_count(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(
            select(func.count()).select_from(UnmatchedReport))).scalar_one())


# --- leases and expiry ---------------------------------------------------------------------------


async def test_only_leases_that_ran_out_go_back_to_the_queue(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR")
    [early] = await queue(runtime, app)
    dead = Dispatcher(runtime)
    await dead.claim_and_send()
    clock.advance(60)
    [late] = await queue(runtime, app)
    await dead.claim_and_send()
    for task in list(dead._tasks):  # the worker dies before sending anything
        task.cancel()
    await asyncio.gather(*dead._tasks, return_exceptions=True)
    clock.advance(runtime.settings.lease_seconds - 60)

    assert await run_upkeep(runtime, recover_expired_leases) == 1

    assert await states(runtime, [early, late]) == ["queued", "sending"]
    recovered = await load_one(runtime, early)
    assert recovered.next_attempt_at == clock()
    [event] = await history(runtime, early)
    assert (event.kind, event.state_from, event.state_to, event.detail) == (
        "state", "sending", "queued", {"reason": "lease expired (worker stopped mid-send)"})


async def test_expire_overdue_expires_messages_a_limit_held_past_their_validity(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR", rate_limit="1/hour")
    [sent, held] = await queue(runtime, app, 2, ttl=60)
    [patient] = await queue(runtime, app, 1)
    await one_round(Dispatcher(runtime))  # one token: the first goes, the others wait
    clock.advance(59)
    assert await run_upkeep(runtime, expire_overdue) == 0

    clock.advance(1)
    assert await run_upkeep(runtime, expire_overdue) == 1

    assert await states(runtime, [sent, held, patient]) == ["sent", "expired", "queued"]
    message = await load_one(runtime, held)
    assert (message.error_code, message.error_detail, message.completed_at) == (
        "expired", "validity period ended", clock())
    [event] = await history(runtime, held)
    assert (event.state_from, event.state_to, event.detail) == (
        "queued", "expired", {"reason": "validity period ended"})


# --- daily counters ------------------------------------------------------------------------------


async def test_daily_counters_reset_at_midnight_in_each_tenants_own_timezone(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    kolkata = await tenants.create(region="IN")
    utc = await tenants.create()
    async with runtime.sessions() as session:
        await session.execute(update(Tenant).where(Tenant.id == kolkata.tenant_id)
                              .values(timezone="Asia/Kolkata"))
        await session.commit()
    indian = await make_app(runtime, kolkata.tenant_id, provider="SIMULATOR")
    american = await make_app(runtime, utc.tenant_id, provider="SIMULATOR")
    unused = await make_app(runtime, utc.tenant_id, provider="SIMULATOR")
    async with runtime.sessions() as session:
        await session.execute(update(ChannelAccount).where(
            ChannelAccount.id.in_([indian.id, american.id]))
            .values(daily_day=date(2026, 11, 24), daily_sent=7, daily_segments=9))
        await session.commit()
    clock.advance(6 * 3600 + 29 * 60)
    assert clock() == datetime(2026, 11, 24, 18, 29, tzinfo=UTC)  # 23:59 in Kolkata
    assert await run_upkeep(runtime, reset_daily_counters) == 0

    clock.advance(60)  # midnight in Kolkata; still the 24th in UTC
    assert await run_upkeep(runtime, reset_daily_counters) == 1

    async with runtime.sessions() as session:
        counters = {a.id: (a.daily_day, a.daily_sent, a.daily_segments) for a in (
            await session.execute(select(ChannelAccount))).scalars()}
    assert counters == {indian.id: (date(2026, 11, 25), 0, 0),
                        american.id: (date(2026, 11, 24), 7, 9),
                        unused.id: (None, 0, 0)}


# --- the simulator -------------------------------------------------------------------------------


async def test_the_simulator_reports_delivered_once_its_delay_has_passed(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR",
                         config={"delay_ms": 5000})
    ids = await queue(runtime, app, 3)
    await one_round(Dispatcher(runtime))
    clock.advance(4.999)
    assert await run_upkeep(runtime, deliver_simulator_reports) == 0

    clock.advance(0.001)
    assert await run_upkeep(runtime, deliver_simulator_reports) == 3

    assert await states(runtime, ids) == ["delivered"] * 3
    message = await load_one(runtime, ids[0])
    assert (message.delivered_at, message.next_attempt_at, message.provider_status) == (
        clock(), None, "delivered")
    assert await run_upkeep(runtime, deliver_simulator_reports) == 0


async def test_a_failure_rate_of_one_fails_every_simulated_message_with_sim_failed(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR",
                         config={"delay_ms": 0, "failure_rate": 1.0})
    ids = await queue(runtime, app, 5)
    await one_round(Dispatcher(runtime))

    assert await run_upkeep(runtime, deliver_simulator_reports) == 5

    for message_id in ids:
        message = await load_one(runtime, message_id)
        assert (message.state, message.error_code, message.error_detail) == (
            "failed", "SIM_FAILED", "simulated failure (failure_rate)")


# --- reports before their message ----------------------------------------------------------------


async def test_a_report_for_an_unknown_provider_id_waits_and_applies_when_the_id_is_recorded(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR",
                         config={"delay_ms": 60_000})
    [message_id] = await queue(runtime, app)
    early = StatusUpdate(f"sim-{message_id}", MessageState.DELIVERED, "delivered")
    async with runtime.sessions() as session:
        summary = await apply_webhook_events(session, app, [early], runtime.clock())
        await session.commit()
    assert (summary.unmatched, summary.applied) == (1, 0)
    assert await unmatched_count(runtime) == 1

    dispatcher = Dispatcher(runtime)
    await dispatcher.claim_and_send()
    await settle(dispatcher)

    message = await load_one(runtime, message_id)
    assert (message.state, message.provider_message_id) == ("delivered", f"sim-{message_id}")
    assert message.next_attempt_at is None  # no simulated report is due any more
    assert await unmatched_count(runtime) == 0
    assert [(e.kind, e.state_from, e.state_to) for e in await history(runtime, message_id)] == [
        ("attempt", "sending", "sent"), ("report", "sent", "delivered")]


async def test_a_batch_of_reports_applies_each_report_once_per_message(
        runtime: Runtime, tenants: TenantFactory) -> None:
    """``apply_status_updates`` reads every history in one query; a report repeated in the
    batch, or already in the history, is a redelivery and changes nothing."""
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR",
                         config={"delay_ms": 60_000})
    first, second = await queue(runtime, app, 2)
    await one_round(Dispatcher(runtime))
    delivered = StatusUpdate("", MessageState.DELIVERED, "delivered")
    async with runtime.sessions() as session:
        messages = {m.id: m for m in (await session.execute(
            select(Message).where(Message.id.in_([first, second])))).scalars()}
        await apply_status_updates(session, [(messages[first], delivered)], runtime.clock())
        await session.commit()

    async with runtime.sessions() as session:
        messages = {m.id: m for m in (await session.execute(
            select(Message).where(Message.id.in_([first, second])))).scalars()}
        changed = await apply_status_updates(session, [
            (messages[first], delivered), (messages[second], delivered),
            (messages[second], delivered)], runtime.clock())
        await session.commit()

    assert changed == 1  # only the second message's first copy moved a state
    assert await states(runtime, [first, second]) == ["delivered", "delivered"]
    for message_id in (first, second):
        reports = [e for e in await history(runtime, message_id) if e.kind == "report"]
        assert [(e.state_from, e.state_to) for e in reports] == [("sent", "delivered")]


async def test_reports_that_never_find_their_message_are_swept_after_a_day(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR")

    async def report(provider_id: str) -> None:
        async with runtime.sessions() as session:
            await apply_webhook_events(session, app, [StatusUpdate(
                provider_id, MessageState.DELIVERED, "delivered")], runtime.clock())
            await session.commit()

    await report("sim-stale")
    clock.advance(3600)
    await report("sim-recent")
    clock.advance(timedelta(days=1).total_seconds() - 3600)
    assert await run_upkeep(runtime, sweep_unmatched_reports) == 0

    clock.advance(1)
    assert await run_upkeep(runtime, sweep_unmatched_reports) == 1

    async with runtime.sessions() as session:
        left = (await session.execute(select(UnmatchedReport.provider_message_id))).scalars()
        assert list(left) == ["sim-recent"]
