"""Tenant callbacks end to end: a message change queues a signed callback, and the callback
sender delivers it to a real HTTP receiver on 127.0.0.1, retrying on failures, in order per
message, giving up after ``TIDINGS_CALLBACK_MAX_AGE_SECONDS``.

Signatures are checked here with ``hmac`` and ``hashlib`` directly, not with the code under test.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import datetime

import httpx
from sqlalchemy import select

from tests.callbacks.steps import (
    PHONE,
    WEBHOOK_SECRET,
    Receiver,
    add_endpoint,
    queued_message,
    report,
    sent_message,
    stored_deliveries,
)
from tests.conftest import FakeClock, TenantFactory
from tests.fakes.callback_receiver import ReceivedCallback
from tidings.db.models import ChannelAccount
from tidings.pipeline.callbacks import CallbackSender, record_and_claim
from tidings.pipeline.dispatcher import Dispatcher
from tidings.providers.base import InboundMessage
from tidings.runtime import Runtime
from tidings.services import reports, sms_upkeep


def _signed_correctly(request: ReceivedCallback, at: datetime) -> bool:
    timestamp = str(int(at.timestamp()))
    expected = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    return (request.headers["x-tidings-timestamp"] == timestamp
            and request.headers["x-tidings-signature"] == f"sha256={expected}")


async def test_a_delivery_report_reaches_the_endpoint_signed_with_the_message_as_data(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks/tidings")
    message_id = (await sent_message(runtime, tenant, "prov-1")).message_id

    await report(runtime, "prov-1", "delivered", "DELIVRD")
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
    [row] = await stored_deliveries(runtime)
    assert (row.state, row.attempts, row.last_status_code) == ("delivered", 1, 200)


async def test_an_inbound_message_reaches_the_endpoints_that_take_inbound_only(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/inbound", events=("message.inbound",))
    await add_endpoint(runtime, tenant, f"{base_url}/status", events=("message.status",))
    await sent_message(runtime, tenant, "prov-1")
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
    await add_endpoint(runtime, tenant, f"{base_url}/hooks")
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")

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
    [row] = await stored_deliveries(runtime)
    assert (row.state, row.attempts, row.last_status_code) == ("delivered", 3, 200)


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.delays = [2.0]
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/slow")
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")

    await sender.deliver_due()

    [row] = await stored_deliveries(runtime)
    assert (row.state, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert row.last_error == "no answer within 0.5 s"


async def test_a_later_event_waits_until_the_earlier_one_of_its_message_is_delivered(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.statuses = [500]
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks")
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")
    await report(runtime, "prov-1", "read", "READ")

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
    await add_endpoint(runtime, tenant, f"{base_url}/down")
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")

    for _ in range(30):
        await sender.deliver_due()
        clock.advance(600)

    [row] = await stored_deliveries(runtime)
    assert row.state == "failed"
    assert row.completed_at is not None
    assert (row.completed_at - row.created_at).total_seconds() >= 3600


async def test_a_tenant_without_endpoints_queues_nothing_and_others_get_only_their_own(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    quiet, listening = await tenants.create(), await tenants.create()
    await add_endpoint(runtime, listening, f"{base_url}/mine")
    await sent_message(runtime, quiet, "prov-quiet")
    await sent_message(runtime, listening, "prov-mine")

    await report(runtime, "prov-quiet", "delivered", "DELIVRD")
    await report(runtime, "prov-mine", "delivered", "DELIVRD")
    await sender.deliver_due()

    assert [json.loads(r.body)["tenant_id"] for r in fake.requests] == [listening.tenant_id]


async def test_an_address_that_is_internal_at_delivery_time_is_not_called(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/internal")
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")
    runtime.settings.callback_allow_private_networks = False

    await sender.deliver_due()

    assert fake.requests == []
    [row] = await stored_deliveries(runtime)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "private or loopback" in (row.last_error or "")


async def _states_sent(fake_requests: list[ReceivedCallback]) -> list[str]:
    return [json.loads(request.body)["data"]["state"] for request in fake_requests]


async def test_the_dispatchers_send_is_a_status_change_too(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks", events=("message.status",))
    queued = await queued_message(runtime, tenant)
    dispatcher = Dispatcher(runtime)

    await dispatcher.claim_and_send()
    while dispatcher._tasks:
        await asyncio.gather(*list(dispatcher._tasks))
    await dispatcher.flush_results()
    await sender.deliver_due()

    assert await _states_sent(fake.requests) == ["sent"]
    assert json.loads(fake.requests[0].body)["data"]["id"] == queued.message_id


async def test_a_cancel_through_the_api_is_a_status_change(
        client: httpx.AsyncClient, runtime: Runtime, sender: CallbackSender,
        tenants: TenantFactory, receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks", events=("message.status",))
    queued = await queued_message(runtime, tenant)

    cancelled = await client.post(f"/sms/v1/messages/{queued.message_id}/cancel/",
                                  headers=tenant.headers)
    await sender.deliver_due()

    assert cancelled.status_code == 200, cancelled.text
    assert await _states_sent(fake.requests) == ["cancelled"]


async def test_expiring_in_the_queue_is_a_status_change(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks", events=("message.status",))
    await queued_message(runtime, tenant, ttl=60)

    clock.advance(61)
    async with runtime.sessions() as session:
        await sms_upkeep.expire_overdue(session, runtime.clock())
        await session.commit()
    await sender.deliver_due()

    assert await _states_sent(fake.requests) == ["expired"]


async def test_a_callback_whose_sender_died_mid_delivery_is_sent_after_its_lease(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory, clock: FakeClock,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks", events=("message.status",))
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")

    [claimed] = await record_and_claim(runtime, [], clock.now, 10)  # then the process dies
    clock.advance(runtime.settings.lease_seconds - 1)
    during_lease = await sender.deliver_due()
    clock.advance(1)
    after_lease = await sender.deliver_due()

    assert (during_lease, after_lease) == (0, 1)
    [request] = fake.requests
    assert request.headers["x-tidings-event-id"] == claimed.event_id


async def test_a_sends_own_callback_url_gets_its_status_changes_signed_with_the_tenant_secret(
        client: httpx.AsyncClient, runtime: Runtime, sender: CallbackSender, clock: FakeClock,
        tenants: TenantFactory, receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    app_id = (await queued_message(runtime, tenant)).app_id
    sent = await client.post("/sms/v1/messages/", headers=tenant.headers, json={
        "phone": PHONE, "text": "Your order shipped", "sms_app_id": app_id,
        "callback_url": f"{base_url}/per-message"})
    message_id = sent.json()["id"]

    cancelled = await client.post(f"/sms/v1/messages/{message_id}/cancel/",
                                  headers=tenant.headers)
    await sender.deliver_due()
    secret = (await client.get("/tenants/webhooks/signing-secret/",
                               headers=tenant.headers)).json()["secret"]

    assert (sent.status_code, cancelled.status_code) == (201, 200)
    [request] = fake.requests
    body = json.loads(request.body)
    assert (request.path, body["event"], body["data"]["id"], body["data"]["state"]) == (
        "/per-message", "message.status", message_id, "cancelled")
    timestamp = str(int(clock.now.timestamp()))
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    assert request.headers["x-tidings-signature"] == f"sha256={expected}"


async def test_the_signing_secret_stays_the_same_once_made(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    first = await client.get("/tenants/webhooks/signing-secret/", headers=tenant.headers)
    second = await client.get("/tenants/webhooks/signing-secret/", headers=tenant.headers)

    assert first.status_code == 200
    assert first.json()["secret"].startswith("whsec_")
    assert first.json() == second.json()
