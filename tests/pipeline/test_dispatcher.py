"""The dispatcher, driven by hand one round at a time (claim, let the sends finish, record the
outcomes) with the FakeClock, against the Twilio fake served on loopback.

Claims: priority then due time, scheduled sends, the lease, round-robin across apps and
tenants, the send window, two dispatchers on one queue. Limits: the app's token bucket
(priority >= 100 skips it) and its daily limit at the tenant's midnight. Outcomes: retries with
backoff and Retry-After, permanent rejections, malformed answers, a dead provider, expiry,
leases of dead workers, the history of every attempt, credentials kept out of it, a provider
module that raises, and apps deleted with messages still queued.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.conftest import FakeClock, TenantFactory
from tests.fakes.server import free_port, serve_in_thread
from tests.fakes.twilio import FakeTwilio
from tidings.db.models import ChannelAccount, Message, MessageEvent, Tenant
from tidings.domain.retry import RetryPolicy
from tidings.pipeline.dispatcher import Dispatcher
from tidings.pipeline.send_budget import SendBudget
from tidings.providers.sms import twilio as twilio_provider
from tidings.runtime import Runtime
from tidings.services.sms_apps import SmsAppFields, create_sms_app, delete_sms_app
from tidings.services.sms_send import (
    Sender,
    SendPlan,
    SendRequest,
    build_message_row,
    store_messages,
)
from tidings.services.sms_upkeep import recover_expired_leases, reset_daily_counters

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "5ec12e7a" * 4
TWILIO_NUMBER = "+15005550006"
RECIPIENT = "+14155550100"
SEED = 7
UNLIMITED = "100000/min"
DEADLINE = 10.0


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def twilio(runtime: Runtime) -> Iterator[FakeTwilio]:
    """The Twilio fake on a loopback port; the runtime's Twilio base URL points at it."""
    fake = FakeTwilio({ACCOUNT_SID: AUTH_TOKEN})
    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls["twilio"] = base_url
        yield fake


async def make_app(runtime: Runtime, tenant_id: str, *, provider: str = "TWILIO",
                   rate_limit: str = UNLIMITED, daily_limit: int | None = None,
                   config: dict[str, Any] | None = None) -> ChannelAccount:
    credentials = ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
                   if provider == "TWILIO" else {})
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant_id,
            fields=SmsAppFields(name=f"{provider} app", provider=provider,
                                sender_id=TWILIO_NUMBER, provider_credentials=credentials,
                                provider_config=config or {}, rate_limit=rate_limit,
                                daily_limit=daily_limit),
            default_rate_limit=runtime.settings.sms_rate_limit, now=runtime.clock())
        await session.commit()
    return app


async def queue(runtime: Runtime, app: ChannelAccount, count: int = 1, *, priority: int = 0,
                scheduled_at: datetime | None = None, ttl: int | None = None,
                mode: str = "live", texts: Sequence[str] | None = None) -> list[str]:
    """Accept ``count`` messages for ``app`` as the API would; their ids, in order."""
    now = runtime.clock()
    plan = SendPlan(app=app, template_body=None)
    sender = Sender(tenant_id=app.tenant_id, default_region="US", mode=mode)
    bodies = list(texts) if texts is not None else [f"Your code is {i:04d}" for i in range(count)]
    pending = [build_message_row(plan, sender, SendRequest(
        phone=RECIPIENT, text=text, priority=priority, scheduled_at=scheduled_at, ttl=ttl),
        now=now, max_segments=10) for text in bodies]
    async with runtime.sessions() as session:
        await store_messages(session, pending, now)
        await session.commit()
    return [item.row["id"] for item in pending]


async def settle(dispatcher: Dispatcher) -> None:
    """Let every send in flight finish, then record the outcomes."""
    while dispatcher._tasks:
        await asyncio.gather(*list(dispatcher._tasks))
    await dispatcher.flush_results()


async def one_round(dispatcher: Dispatcher) -> int:
    claimed = await dispatcher.claim_and_send()
    await settle(dispatcher)
    return claimed


async def load(runtime: Runtime, ids: Sequence[str]) -> list[Message]:
    async with runtime.sessions() as session:
        found = {m.id: m for m in (await session.execute(
            select(Message).where(Message.id.in_(ids)))).scalars()}
    return [found[i] for i in ids]


async def load_one(runtime: Runtime, message_id: str) -> Message:
    return (await load(runtime, [message_id]))[0]


async def states(runtime: Runtime, ids: Sequence[str]) -> list[str]:
    return [m.state for m in await load(runtime, ids)]


async def history(runtime: Runtime, message_id: str) -> list[MessageEvent]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(MessageEvent).where(
            MessageEvent.message_id == message_id).order_by(MessageEvent.id))).scalars())


async def count_in_state(runtime: Runtime, account_id: str, state: str) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Message).where(
            Message.channel_account_id == account_id, Message.state == state))).scalar_one())


class MeetingBudget:
    """A send budget whose callers wait for each other before taking tokens: the dispatchers
    that call it have all selected their rows before any of them claims."""

    def __init__(self, inner: SendBudget, parties: int) -> None:
        self.inner = inner
        self.barrier = asyncio.Barrier(parties)

    async def take(self, key: str, rate: int, period: float, want: int) -> tuple[int, float]:
        await asyncio.wait_for(self.barrier.wait(), DEADLINE)
        return await self.inner.take(key, rate, period, want)

    async def close(self) -> None:
        await self.inner.close()


async def wait_for_state(runtime: Runtime, message_id: str, state: str, *,
                         attempts: int | None = None) -> None:
    """Poll (with a deadline) until a running dispatcher has recorded ``state``."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        message = await load_one(runtime, message_id)
        if message.state == state and attempts in (None, message.attempts):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{message_id} is still {message.state} "
                                 f"after {message.attempts} attempt(s)")
        await asyncio.sleep(0.01)


async def delete_app(runtime: Runtime, app: ChannelAccount) -> None:
    async with runtime.sessions() as session:
        await delete_sms_app(session, tenant_id=app.tenant_id, app_id=app.id,
                             now=runtime.clock())
        await session.commit()


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


# --- claiming ------------------------------------------------------------------------------------


async def test_a_claimed_message_is_sending_under_a_lease_with_its_attempt_counted(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    dispatcher = Dispatcher(runtime)

    assert await dispatcher.claim_and_send() == 1
    claimed = await load_one(runtime, message_id)
    await settle(dispatcher)

    assert claimed.state == "sending"
    assert claimed.attempts == 1
    assert claimed.next_attempt_at == clock() + timedelta(seconds=runtime.settings.lease_seconds)
    sent = await load_one(runtime, message_id)
    assert (sent.state, sent.attempts, sent.next_attempt_at) == ("sent", 1, None)
    assert sent.provider_message_id == twilio.messages[0].sid
    assert dict(twilio.messages[0].form) == {
        "To": RECIPIENT, "From": TWILIO_NUMBER, "Body": "Your code is 0000",
        "StatusCallback": f"http://127.0.0.1:8000/sms/v1/webhooks/{app.id}/dlr/"
                          f"?token={app.webhook_token}"}


async def test_claims_take_the_highest_priority_first_then_the_oldest_due(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [low] = await queue(runtime, app, priority=0, texts=["low"])
    clock.advance(1)
    [older] = await queue(runtime, app, priority=5, texts=["older"])
    clock.advance(1)
    [newer] = await queue(runtime, app, priority=5, texts=["newer"])
    clock.advance(1)
    [high] = await queue(runtime, app, priority=10, texts=["high"])
    runtime.settings.dispatch_window = 1  # one message per round shows the order
    dispatcher = Dispatcher(runtime)

    for _ in range(4):
        assert await one_round(dispatcher) == 1

    assert [m.body for m in twilio.messages] == ["high", "older", "newer", "low"]
    assert await states(runtime, [high, older, newer, low]) == ["sent"] * 4


async def test_a_scheduled_message_is_not_claimed_before_its_time_and_is_after(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app, scheduled_at=clock() + timedelta(minutes=10))
    dispatcher = Dispatcher(runtime)

    assert await one_round(dispatcher) == 0
    clock.advance(599)
    assert await one_round(dispatcher) == 0
    assert twilio.requests == []
    clock.advance(1)
    assert await one_round(dispatcher) == 1

    assert await states(runtime, [message_id]) == ["sent"]


async def test_one_round_claims_from_every_app_so_a_busy_tenant_does_not_starve_a_small_one(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    busy = await make_app(runtime, (await tenants.create()).tenant_id)
    small = await make_app(runtime, (await tenants.create()).tenant_id)
    await queue(runtime, busy, 1000)
    small_ids = await queue(runtime, small, 5)
    dispatcher = Dispatcher(runtime)

    claimed = await dispatcher.claim_and_send()
    await settle(dispatcher)

    assert claimed == runtime.settings.dispatch_window + 5
    assert await states(runtime, small_ids) == ["sent"] * 5
    assert await count_in_state(runtime, busy.id, "sent") == runtime.settings.dispatch_window
    assert await count_in_state(runtime, busy.id, "queued") == \
        1000 - runtime.settings.dispatch_window


async def test_an_app_keeps_its_send_window_when_its_settings_are_reloaded_mid_send(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock, twilio: FakeTwilio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher reloads its apps every few seconds; sends that were in flight across a
    reload must give their window slot back when they finish."""
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    ids = await queue(runtime, app, 4)
    runtime.settings.dispatch_window = 2
    dispatcher = Dispatcher(runtime)
    provider_answers = asyncio.Event()
    real_send = twilio_provider.send

    async def held_send(*args: Any, **kwargs: Any) -> Any:
        await provider_answers.wait()
        return await real_send(*args, **kwargs)

    monkeypatch.setattr(twilio_provider, "send", held_send)

    assert await dispatcher.claim_and_send() == 2
    clock.advance(5)  # the next round reloads the apps while both sends are in flight
    assert await dispatcher.claim_and_send() == 0  # the window is full
    provider_answers.set()
    await settle(dispatcher)

    assert await one_round(dispatcher) == 2
    assert await states(runtime, ids) == ["sent"] * 4


async def test_two_dispatchers_never_claim_the_same_message(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    """Two workers on one queue (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer)."""
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    texts = [f"message {i}" for i in range(100)]
    ids = await queue(runtime, app, texts=texts)
    first, second = Dispatcher(runtime), Dispatcher(runtime)

    claimed = await asyncio.gather(first.claim_and_send(), second.claim_and_send())
    await asyncio.gather(settle(first), settle(second))

    assert sum(claimed) == 100
    assert sorted(m.body for m in twilio.messages) == sorted(texts)
    assert await states(runtime, ids) == ["sent"] * 100


async def test_on_postgresql_two_dispatchers_claiming_at_once_skip_each_others_rows(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer at a time")
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    texts = [f"message {i}" for i in range(100)]
    ids = await queue(runtime, app, texts=texts)
    runtime.send_budget = MeetingBudget(runtime.send_budget, parties=2)
    first, second = Dispatcher(runtime), Dispatcher(runtime)

    claimed = await asyncio.gather(first.claim_and_send(), second.claim_and_send())
    await asyncio.gather(settle(first), settle(second))

    assert sorted(claimed) == [100 - runtime.settings.dispatch_window,
                               runtime.settings.dispatch_window]
    assert sorted(m.body for m in twilio.messages) == sorted(texts)
    assert await states(runtime, ids) == ["sent"] * 100


# --- the app's limits ----------------------------------------------------------------------------


async def test_a_rate_limited_app_gets_at_most_its_rate_per_round_and_more_as_time_passes(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, rate_limit="10/min")
    await queue(runtime, app, 25)
    dispatcher = Dispatcher(runtime)

    assert await one_round(dispatcher) == 10
    assert await one_round(dispatcher) == 0
    clock.advance(30)  # half a minute refills half the bucket
    assert await one_round(dispatcher) == 5
    clock.advance(60)
    assert await one_round(dispatcher) == 10

    assert len(twilio.messages) == 25


async def test_priority_100_and_above_skips_the_rate_limit(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, rate_limit="10/min")
    urgent = await queue(runtime, app, 15, priority=100)
    ordinary = await queue(runtime, app, 15, priority=99)
    dispatcher = Dispatcher(runtime)

    assert await one_round(dispatcher) == 25

    assert await states(runtime, urgent) == ["sent"] * 15
    assert (await states(runtime, ordinary)).count("sent") == 10


async def test_an_urgent_message_does_not_wait_for_a_rate_limited_apps_next_token(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, rate_limit="1/hour")
    await queue(runtime, app, 2)
    dispatcher = Dispatcher(runtime)
    assert await one_round(dispatcher) == 1  # the second waits an hour for a token

    [urgent] = await queue(runtime, app, priority=120)

    assert await one_round(dispatcher) == 1
    assert await states(runtime, [urgent]) == ["sent"]


async def test_a_daily_limit_holds_the_rest_until_midnight_in_the_tenants_timezone(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create(region="IN")
    async with runtime.sessions() as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant.tenant_id)
                              .values(timezone="Asia/Kolkata"))
        await session.commit()
    app = await make_app(runtime, tenant.tenant_id, daily_limit=3)
    ids = await queue(runtime, app, 5)
    dispatcher = Dispatcher(runtime)
    assert clock() == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 17:30 in Kolkata

    assert await one_round(dispatcher) == 3
    assert await one_round(dispatcher) == 0
    clock.advance(6 * 3600 + 29 * 60)  # 23:59 in Kolkata
    assert await one_round(dispatcher) == 0
    clock.advance(120)  # 00:01 on the 25th in Kolkata, still the 24th in UTC
    async with runtime.sessions() as session:
        assert await reset_daily_counters(session, clock()) == 1
        await session.commit()
    assert await one_round(dispatcher) == 2

    assert await states(runtime, ids) == ["sent"] * 5
    assert len(twilio.messages) == 5
    async with runtime.sessions() as session:
        account = await session.get_one(ChannelAccount, app.id)
    assert (account.daily_day, account.daily_sent, account.daily_segments) == (
        datetime(2026, 11, 25).date(), 2, 2)


async def test_the_daily_limit_counts_sends_whose_outcome_is_not_yet_recorded(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id, daily_limit=3)
    await queue(runtime, app, 5)
    dispatcher = Dispatcher(runtime)

    assert await dispatcher.claim_and_send() == 3
    while dispatcher._tasks:  # the sends finish; the writer has not recorded them yet
        await asyncio.gather(*list(dispatcher._tasks))
    assert await dispatcher.claim_and_send() == 0
    await settle(dispatcher)

    assert len(twilio.messages) == 3
    assert await count_in_state(runtime, app.id, "queued") == 2


# --- outcomes ------------------------------------------------------------------------------------


async def test_a_503_requeues_the_message_after_a_jittered_backoff_with_http_503_recorded(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    twilio.fail_next(status=503, body="upstream connect error or disconnect/reset")
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))

    await one_round(dispatcher)

    policy = RetryPolicy(max_attempts=runtime.settings.retry_max_attempts,
                         base_seconds=runtime.settings.retry_base_seconds)
    delay = policy.next_delay(1, random.Random(SEED))
    assert delay is not None
    assert 1.6 <= delay <= 2.4
    assert delay != 2.0
    message = await load_one(runtime, message_id)
    assert (message.state, message.attempts, message.error_code, message.error_detail) == (
        "queued", 1, "http_503", "upstream connect error or disconnect/reset")
    assert message.next_attempt_at == clock() + timedelta(seconds=delay)

    clock.advance(delay)
    assert await one_round(dispatcher) == 1
    message = await load_one(runtime, message_id)
    assert (message.state, message.attempts, message.error_code) == ("sent", 2, None)


async def test_a_429_waits_at_least_its_retry_after(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    twilio.fail_next(status=429, headers={"Retry-After": "120"})
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))

    await one_round(dispatcher)
    message = await load_one(runtime, message_id)
    assert (message.state, message.error_code, message.error_detail) == (
        "queued", "20429", "Too Many Requests")
    assert message.next_attempt_at is not None
    assert clock() + timedelta(seconds=120) <= message.next_attempt_at \
        <= clock() + timedelta(seconds=120 * 1.2)

    clock.advance(119)
    assert await one_round(dispatcher) == 0
    clock.advance((message.next_attempt_at - clock()).total_seconds())
    assert await one_round(dispatcher) == 1
    assert await states(runtime, [message_id]) == ["sent"]


async def test_a_message_fails_once_its_attempts_are_used_up(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    runtime.settings.retry_max_attempts = 3
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    twilio.fail_next(5, status=500)
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))

    for _ in range(5):
        await one_round(dispatcher)
        clock.advance(3600)

    message = await load_one(runtime, message_id)
    assert (message.state, message.attempts, message.error_code) == ("failed", 3, "20500")
    assert message.completed_at is not None
    assert message.next_attempt_at is None
    assert len(twilio.requests) == 3
    last = (await history(runtime, message_id))[-1]
    assert (last.kind, last.state_from, last.state_to) == ("attempt", "sending", "failed")
    assert last.detail["final"] == "attempts exhausted"


async def test_a_permanent_400_fails_the_message_with_twilios_code_and_message(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    twilio.fail_next(status=400, body=twilio_error(
        21211, "Invalid 'To' Phone Number: +1415555010", 400))
    dispatcher = Dispatcher(runtime)

    await one_round(dispatcher)
    clock.advance(3600)
    assert await one_round(dispatcher) == 0

    message = await load_one(runtime, message_id)
    assert (message.state, message.error_code, message.error_detail) == (
        "failed", "21211", "Invalid 'To' Phone Number: +1415555010")
    assert len(twilio.requests) == 1


async def test_a_201_without_a_sid_fails_the_message_and_is_not_retried(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    twilio.malformed_next(body='{"status": "queued"}')
    dispatcher = Dispatcher(runtime)

    await one_round(dispatcher)
    clock.advance(3600)
    assert await one_round(dispatcher) == 0

    message = await load_one(runtime, message_id)
    assert (message.state, message.error_code) == ("failed", "malformed_response")
    assert message.error_detail == 'HTTP 201 without a message sid: {"status": "queued"}'
    assert len(twilio.requests) == 1


async def test_a_refused_connection_is_retried(
        runtime: Runtime, tenants: TenantFactory) -> None:
    runtime.settings.provider_urls["twilio"] = f"http://127.0.0.1:{free_port()}"
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    dispatcher = Dispatcher(runtime)

    await one_round(dispatcher)

    message = await load_one(runtime, message_id)
    assert (message.state, message.error_code) == ("queued", "transport_error")
    assert message.error_detail is not None
    assert message.error_detail.startswith("ConnectError")
    assert message.next_attempt_at is not None
    assert message.next_attempt_at > runtime.clock()


async def test_a_message_past_its_ttl_when_claimed_expires_without_a_request(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app, ttl=60)
    dispatcher = Dispatcher(runtime)
    clock.advance(60)

    await one_round(dispatcher)

    message = await load_one(runtime, message_id)
    assert (message.state, message.error_code) == ("expired", "expired")
    assert message.completed_at == clock()
    assert twilio.requests == []


async def test_a_retry_that_would_come_after_the_expiry_expires_the_message(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app, ttl=60)
    twilio.fail_next(status=429, headers={"Retry-After": "300"})
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))

    await one_round(dispatcher)

    message = await load_one(runtime, message_id)
    assert (message.state, message.error_code, message.next_attempt_at) == (
        "expired", "20429", None)


async def test_a_test_mode_message_goes_to_the_simulator_whatever_app_it_names(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app, mode="test")
    dispatcher = Dispatcher(runtime)

    await one_round(dispatcher)

    message = await load_one(runtime, message_id)
    assert (message.state, message.provider_message_id) == ("sent", f"sim-{message_id}")
    assert twilio.requests == []
    async with runtime.sessions() as session:
        assert (await session.get_one(ChannelAccount, app.id)).daily_sent == 0


# --- dead workers --------------------------------------------------------------------------------


async def test_a_lease_that_ran_out_puts_the_message_back_and_the_next_round_sends_it(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    dead = Dispatcher(runtime)
    assert await dead.claim_and_send() == 1
    for task in list(dead._tasks):  # the worker dies before its send starts
        task.cancel()
    await asyncio.gather(*dead._tasks, return_exceptions=True)

    clock.advance(runtime.settings.lease_seconds - 1)
    async with runtime.sessions() as session:
        assert await recover_expired_leases(session, clock()) == 0
    clock.advance(1)
    async with runtime.sessions() as session:
        assert await recover_expired_leases(session, clock()) == 1
        await session.commit()
    assert await states(runtime, [message_id]) == ["queued"]
    assert await one_round(Dispatcher(runtime)) == 1

    message = await load_one(runtime, message_id)
    assert (message.state, message.attempts) == ("sent", 2)
    assert len(twilio.messages) == 1
    assert [(e.kind, e.state_from, e.state_to) for e in await history(runtime, message_id)] == [
        ("state", "sending", "queued"), ("attempt", "sending", "sent")]


async def test_a_worker_that_died_after_sending_means_the_message_is_sent_again(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    """Delivery is at-least-once: the provider's answer was never recorded."""
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    dead = Dispatcher(runtime)
    await dead.claim_and_send()
    await asyncio.gather(*dead._tasks)  # sent, but never recorded

    clock.advance(runtime.settings.lease_seconds)
    async with runtime.sessions() as session:
        await recover_expired_leases(session, clock())
        await session.commit()
    await one_round(Dispatcher(runtime))
    await dead.flush_results()  # the dead worker's late answer changes nothing

    message = await load_one(runtime, message_id)
    assert len(twilio.messages) == 2
    assert (message.state, message.attempts) == ("sent", 2)
    assert message.provider_message_id == twilio.messages[1].sid


# --- history, credentials, robustness ------------------------------------------------------------


async def test_every_attempt_is_in_the_history_with_its_code_and_reason(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    twilio.fail_next(status=503, body="upstream timeout")
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))
    await one_round(dispatcher)
    clock.advance(60)
    await one_round(dispatcher)

    events = await history(runtime, message_id)

    policy = RetryPolicy(max_attempts=runtime.settings.retry_max_attempts,
                         base_seconds=runtime.settings.retry_base_seconds)
    delay = policy.next_delay(1, random.Random(SEED))
    assert delay is not None
    retry_at = clock() - timedelta(seconds=60) + timedelta(seconds=delay)
    assert [(e.kind, e.state_from, e.state_to) for e in events] == [
        ("attempt", "sending", "queued"), ("attempt", "sending", "sent")]
    assert events[0].detail == {"attempt": 1, "sms_app_id": app.id, "provider": "TWILIO",
                                "outcome": "retry", "code": "http_503",
                                "reason": "upstream timeout", "retry_at": retry_at.isoformat()}
    assert events[1].detail["attempt"] == 2
    assert events[1].detail["outcome"] == "accepted"
    assert events[1].detail["provider_ids"] == [twilio.messages[0].sid]
    assert events[1].detail["response"]["status"] == "queued"


async def test_no_credential_reaches_the_history_even_when_the_provider_echoes_it(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock,
        twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    ids = await queue(runtime, app, 4)
    echo = f"rejected request from token {AUTH_TOKEN}"
    twilio.fail_next(status=503, body=f"proxy: upstream refused {AUTH_TOKEN}")
    twilio.fail_next(status=400, body=twilio_error(21211, echo, 400))
    twilio.malformed_next(body=f'{{"status": "queued", "auth_token": "{AUTH_TOKEN}"}}')
    twilio.malformed_next(body=f'{{"sid": "SM{"a" * 32}", "status": "queued", '
                               f'"error_message": "{echo}"}}')
    runtime.settings.dispatch_window = 1  # one answer per message, in order
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))

    for _ in range(4):
        await one_round(dispatcher)

    messages = await load(runtime, ids)
    assert [(m.state, m.error_code) for m in messages] == [
        ("queued", "http_503"), ("failed", "21211"), ("failed", "malformed_response"),
        ("sent", None)]
    assert messages[0].error_detail == "proxy: upstream refused [redacted]"
    assert messages[1].error_detail == "rejected request from token [redacted]"
    async with runtime.sessions() as session:
        details = [str(d) for d in (await session.execute(select(MessageEvent.detail))).scalars()]
    stored = " ".join([*details, *(m.error_detail or "" for m in messages)])
    assert "[redacted]" in stored
    assert AUTH_TOKEN not in stored


async def test_a_provider_module_that_raises_requeues_the_message_and_the_round_goes_on(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock, twilio: FakeTwilio,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    tenant = await tenants.create()
    broken = await make_app(runtime, tenant.tenant_id)
    working = await make_app(runtime, tenant.tenant_id, provider="SIMULATOR")
    [unlucky] = await queue(runtime, broken)
    [lucky] = await queue(runtime, working)

    async def raising_send(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the provider module")

    monkeypatch.setattr(twilio_provider, "send", raising_send)
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))

    assert await one_round(dispatcher) == 2
    message = await load_one(runtime, unlucky)
    assert (message.state, message.error_code, message.error_detail) == (
        "queued", "internal_error", "provider module raised RuntimeError")
    assert await states(runtime, [lucky]) == ["sent"]
    assert "provider TWILIO raised while sending" in caplog.text

    monkeypatch.undo()
    clock.advance(60)
    assert await one_round(dispatcher) == 1
    assert await states(runtime, [unlucky]) == ["sent"]


async def test_the_running_loop_outlives_a_raising_provider_and_sends_the_retry(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock, twilio: FakeTwilio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    real_send = twilio_provider.send
    calls = 0

    async def raises_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the provider module")
        return await real_send(*args, **kwargs)

    monkeypatch.setattr(twilio_provider, "send", raises_once)
    dispatcher = Dispatcher(runtime, rng=random.Random(SEED))
    loop = asyncio.create_task(dispatcher.run())
    try:
        await wait_for_state(runtime, message_id, "queued", attempts=1)
        clock.advance(60)
        dispatcher.wake()
        await wait_for_state(runtime, message_id, "sent")
    finally:
        dispatcher.stop()
        await asyncio.wait_for(loop, DEADLINE)

    assert calls == 2
    assert len(twilio.messages) == 1


async def test_a_queued_message_of_a_deleted_app_fails_with_app_deleted(
        runtime: Runtime, tenants: TenantFactory, twilio: FakeTwilio) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    [message_id] = await queue(runtime, app)
    await delete_app(runtime, app)

    await one_round(Dispatcher(runtime))

    message = await load_one(runtime, message_id)
    assert (message.state, message.error_code) == ("failed", "app_deleted")
    assert message.completed_at is not None
    assert [(e.kind, e.state_from, e.state_to) for e in await history(runtime, message_id)] == [
        ("state", "queued", "failed")]
    assert twilio.requests == []


async def test_an_app_deleted_mid_send_finishes_its_sends_and_claims_nothing_more(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock, twilio: FakeTwilio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = await tenants.create()
    app = await make_app(runtime, tenant.tenant_id)
    ids = await queue(runtime, app, 4)
    runtime.settings.dispatch_window = 2
    dispatcher = Dispatcher(runtime)
    provider_answers = asyncio.Event()
    real_send = twilio_provider.send

    async def held_send(*args: Any, **kwargs: Any) -> Any:
        await provider_answers.wait()
        return await real_send(*args, **kwargs)

    monkeypatch.setattr(twilio_provider, "send", held_send)
    assert await dispatcher.claim_and_send() == 2
    await delete_app(runtime, app)
    clock.advance(5)  # the next round sees the app gone

    assert await dispatcher.claim_and_send() == 0
    provider_answers.set()
    await settle(dispatcher)

    assert await states(runtime, ids) == ["sent", "sent", "failed", "failed"]
    assert len(twilio.messages) == 2
