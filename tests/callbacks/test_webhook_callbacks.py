"""Tenant callbacks end to end: a message change queues a signed callback, and the callback
sender delivers it to a real HTTP receiver on 127.0.0.1, retrying on failures, in order per
message, giving up after ``TIDINGS_CALLBACK_MAX_AGE_SECONDS``.

Signatures are checked here with ``hmac`` and ``hashlib`` directly, not with the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import pytest
from sqlalchemy import select, update

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tests.fakes.callback_receiver import CallbackReceiver, ReceivedCallback
from tests.fakes.server import serve_in_thread
from tidings.config import Settings
from tidings.db.models import CallbackDelivery, ChannelAccount, Message
from tidings.domain.states import MessageState
from tidings.pipeline.callbacks import CallbackSender
from tidings.providers.base import InboundMessage, StatusUpdate
from tidings.runtime import Runtime
from tidings.services import reports, webhooks
from tidings.services.sms_apps import SmsAppFields, create_sms_app
from tidings.services.sms_send import (
    Sender,
    SendPlan,
    SendRequest,
    build_message_row,
    store_messages,
)

SECRET = "whsec_test_secret_0123456789"
Receiver = tuple[CallbackReceiver, str]
"""The receiver and its base URL."""
PHONE = "+14155550100"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "callback_allow_private_networks": True, "callback_retry_base_seconds": 10.0,
        "callback_timeout_seconds": 0.5, "callback_max_age_seconds": 3600.0})


@pytest.fixture
async def sender(runtime: Runtime) -> AsyncIterator[CallbackSender]:
    callbacks = CallbackSender(runtime)
    try:
        yield callbacks
    finally:
        await callbacks.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    fake = CallbackReceiver()
    with serve_in_thread(fake.app()) as base_url:
        yield fake, base_url


async def _endpoint(runtime: Runtime, tenant: TenantHandle, url: str,
                    events: tuple[str, ...] = webhooks.EVENTS) -> str:
    async with runtime.sessions() as session:
        created = await webhooks.create_endpoint(
            session, runtime.secret_box, tenant_id=tenant.tenant_id, url=url,
            events=list(events), secret=SECRET, allow_private=True, now=runtime.clock())
        await session.commit()
    return created.endpoint.id


async def _sent_message(runtime: Runtime, tenant: TenantHandle, provider_id: str) -> str:
    """A message the provider accepted as ``provider_id`` (state ``sent``)."""
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant.tenant_id,
            fields=SmsAppFields(name="Sim", provider="SIMULATOR", sender_id="+14155550000",
                                provider_credentials={}, provider_config={}),
            default_rate_limit="100/min", now=runtime.clock())
        row = build_message_row(SendPlan(app=app, template_body=None),
                                Sender(tenant.tenant_id, "US", "live"),
                                SendRequest(phone=PHONE, text="Your code is 1234"),
                                now=runtime.clock(), max_segments=10)
        await store_messages(session, [row], runtime.clock())
        await session.execute(update(Message).where(Message.id == row.row["id"]).values(
            state="sent", provider_message_id=provider_id, next_attempt_at=None))
        await session.commit()
        return str(row.row["id"])


async def _report(runtime: Runtime, provider_id: str, state: str, word: str) -> None:
    async with runtime.sessions() as session:
        message = (await session.execute(select(Message).where(
            Message.provider_message_id == provider_id))).scalar_one()
        await reports.apply_status_updates(
            session, [(message, StatusUpdate(provider_id, MessageState(state), word))],
            runtime.clock())
        await session.commit()


async def _deliveries(runtime: Runtime) -> list[CallbackDelivery]:
    async with runtime.sessions() as session:
        return list((await session.execute(
            select(CallbackDelivery).order_by(CallbackDelivery.id))).scalars())


def _signed_correctly(request: ReceivedCallback, at: datetime) -> bool:
    timestamp = str(int(at.timestamp()))
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    return (request.headers["x-tidings-timestamp"] == timestamp
            and request.headers["x-tidings-signature"] == f"sha256={expected}")


async def test_a_delivery_report_reaches_the_endpoint_signed_with_the_message_as_data(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await _endpoint(runtime, tenant, f"{base_url}/hooks/tidings")
    message_id = await _sent_message(runtime, tenant, "prov-1")

    await _report(runtime, "prov-1", "delivered", "DELIVRD")
    delivered = await sender.deliver_due()

    assert delivered == 1
    [request] = fake.requests
    body = json.loads(request.body)
    assert (request.method, request.path) == ("POST", "/hooks/tidings")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-tidings-event-id"] == body["id"]
    assert request.headers["x-tidings-event"] == "message.status"
    assert _signed_correctly(request, clock.now)
    assert {key: body[key] for key in ("event", "tenant_id", "occurred_at")} == {
        "event": "message.status", "tenant_id": tenant.tenant_id,
        "occurred_at": "2026-11-24T12:00:00Z"}
    assert {key: body["data"][key] for key in ("id", "state", "phone", "text", "delivered_at")} \
        == {"id": message_id, "state": "delivered", "phone": PHONE, "text": "Your code is 1234",
            "delivered_at": "2026-11-24T12:00:00Z"}
    [row] = await _deliveries(runtime)
    assert (row.state, row.attempts, row.last_status_code) == ("delivered", 1, 200)


async def test_an_inbound_message_reaches_the_endpoints_that_take_inbound_only(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await _endpoint(runtime, tenant, f"{base_url}/inbound", events=("message.inbound",))
    await _endpoint(runtime, tenant, f"{base_url}/status", events=("message.status",))
    await _sent_message(runtime, tenant, "prov-1")
    async with runtime.sessions() as session:
        account = (await session.execute(select(ChannelAccount))).scalars().one()
        await reports.store_inbound(session, account, InboundMessage(
            "mo-1", from_number=PHONE, to_number="+14155550000", text="STOP"), runtime.clock())
        await session.commit()

    await sender.deliver_due()

    [request] = fake.requests
    body = json.loads(request.body)
    assert (request.path, body["event"]) == ("/inbound", "message.inbound")
    assert (body["data"]["direction"], body["data"]["text"], body["data"]["sender_id"]) == (
        "inbound", "STOP", PHONE)


async def test_a_failed_attempt_is_retried_after_the_backoff_with_the_same_event_and_body(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.statuses = [500, 503]
    tenant = await tenants.create()
    await _endpoint(runtime, tenant, f"{base_url}/hooks")
    await _sent_message(runtime, tenant, "prov-1")
    await _report(runtime, "prov-1", "delivered", "DELIVRD")

    await sender.deliver_due()  # 500
    clock.advance(9)
    early = await sender.deliver_due()
    clock.advance(1)
    await sender.deliver_due()  # 503, 10 s after the first
    clock.advance(19)
    too_early = await sender.deliver_due()
    clock.advance(1)
    await sender.deliver_due()  # 200, 20 s after the second

    assert (early, too_early) == (0, 0)
    assert len(fake.requests) == 3
    assert len({request.headers["x-tidings-event-id"] for request in fake.requests}) == 1
    assert len({request.body for request in fake.requests}) == 1
    [row] = await _deliveries(runtime)
    assert (row.state, row.attempts, row.last_status_code) == ("delivered", 3, 200)


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.delays = [2.0]
    tenant = await tenants.create()
    await _endpoint(runtime, tenant, f"{base_url}/slow")
    await _sent_message(runtime, tenant, "prov-1")
    await _report(runtime, "prov-1", "delivered", "DELIVRD")

    await sender.deliver_due()

    [row] = await _deliveries(runtime)
    assert (row.state, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert row.last_error == "no answer within 0.5 s"


async def test_a_later_event_waits_until_the_earlier_one_of_its_message_is_delivered(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.statuses = [500]
    tenant = await tenants.create()
    await _endpoint(runtime, tenant, f"{base_url}/hooks")
    await _sent_message(runtime, tenant, "prov-1")
    await _report(runtime, "prov-1", "delivered", "DELIVRD")
    await _report(runtime, "prov-1", "read", "READ")

    await sender.deliver_due()  # the first fails; the second must not overtake it
    clock.advance(10)
    await sender.deliver_due()
    await sender.deliver_due()

    states = [json.loads(request.body)["data"]["state"] for request in fake.requests]
    assert states == ["delivered", "delivered", "read"]


async def test_a_callback_is_given_up_once_older_than_the_max_age(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.statuses = [500] * 100
    tenant = await tenants.create()
    await _endpoint(runtime, tenant, f"{base_url}/down")
    await _sent_message(runtime, tenant, "prov-1")
    await _report(runtime, "prov-1", "delivered", "DELIVRD")

    for _ in range(30):
        await sender.deliver_due()
        clock.advance(600)

    [row] = await _deliveries(runtime)
    assert row.state == "failed"
    assert row.completed_at is not None
    assert (row.completed_at - row.created_at).total_seconds() >= 3600


async def test_a_tenant_without_endpoints_queues_nothing_and_others_get_only_their_own(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    quiet, listening = await tenants.create(), await tenants.create()
    await _endpoint(runtime, listening, f"{base_url}/mine")
    await _sent_message(runtime, quiet, "prov-quiet")
    await _sent_message(runtime, listening, "prov-mine")

    await _report(runtime, "prov-quiet", "delivered", "DELIVRD")
    await _report(runtime, "prov-mine", "delivered", "DELIVRD")
    await sender.deliver_due()

    assert [json.loads(r.body)["tenant_id"] for r in fake.requests] == [listening.tenant_id]


async def test_an_address_that_is_internal_at_delivery_time_is_not_called(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await _endpoint(runtime, tenant, f"{base_url}/internal")
    await _sent_message(runtime, tenant, "prov-1")
    await _report(runtime, "prov-1", "delivered", "DELIVRD")
    runtime.settings.callback_allow_private_networks = False

    await sender.deliver_due()

    assert fake.requests == []
    [row] = await _deliveries(runtime)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "private or loopback" in (row.last_error or "")
