"""``GET /tenants/webhooks/deliveries/`` and ``POST …/{id}/replay/``: what happened to each
callback, and sending one again."""

from __future__ import annotations

import json

import httpx

from tests.callbacks.steps import Receiver, add_endpoint, report, sent_message
from tests.conftest import FakeClock, TenantFactory
from tidings.pipeline.callbacks import CallbackSender
from tidings.runtime import Runtime

DELIVERIES = "/tenants/webhooks/deliveries/"


async def test_a_failed_try_is_listed_with_the_receivers_answer_and_the_next_try(
        client: httpx.AsyncClient, runtime: Runtime, sender: CallbackSender,
        tenants: TenantFactory, receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.statuses = [503]
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks", events=("message.status",))
    sent = await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")

    await sender.deliver_due()
    listed = await client.get(DELIVERIES, headers=tenant.headers)

    assert listed.status_code == 200
    [delivery] = listed.json()["results"]
    assert {key: delivery[key] for key in ("event", "message_id", "url", "method", "state",
                                           "attempts", "last_status_code", "last_error",
                                           "next_attempt_at", "completed_at")} == {
        "event": "message.status", "message_id": sent.message_id, "url": f"{base_url}/hooks",
        "method": "POST", "state": "pending", "attempts": 1, "last_status_code": 503,
        "last_error": "answered 503", "next_attempt_at": "2026-11-24T12:00:10Z",
        "completed_at": None}
    assert delivery["event_id"] == json.loads(fake.requests[0].body)["id"]


async def test_a_given_up_callback_is_sent_again_at_once_on_replay(
        client: httpx.AsyncClient, runtime: Runtime, sender: CallbackSender, clock: FakeClock,
        tenants: TenantFactory, receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.statuses = [500] * 20
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks", events=("message.status",))
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")
    for _ in range(12):
        await sender.deliver_due()
        clock.advance(600)
    [failed] = (await client.get(f"{DELIVERIES}?state=failed",
                                 headers=tenant.headers)).json()["results"]
    fake.statuses = []
    tries_before = len(fake.requests)

    replayed = await client.post(f"{DELIVERIES}{failed['id']}/replay/", headers=tenant.headers)
    await sender.deliver_due()
    after = (await client.get(DELIVERIES, headers=tenant.headers)).json()["results"][0]

    assert replayed.status_code == 200
    assert replayed.json()["state"] == "pending"
    assert len(fake.requests) == tries_before + 1
    assert fake.requests[-1].headers["x-tidings-event-id"] == failed["event_id"]
    assert (after["state"], after["last_status_code"]) == ("delivered", 200)


async def test_another_tenants_deliveries_are_not_listed_nor_replayable(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        receiver: Receiver) -> None:
    _, base_url = receiver
    owner, other = await tenants.create(), await tenants.create()
    await add_endpoint(runtime, owner, f"{base_url}/hooks")
    await sent_message(runtime, owner, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")
    [delivery] = (await client.get(DELIVERIES, headers=owner.headers)).json()["results"]

    listed = await client.get(DELIVERIES, headers=other.headers)
    replayed = await client.post(f"{DELIVERIES}{delivery['id']}/replay/", headers=other.headers)

    assert listed.json()["count"] == 0
    assert replayed.status_code == 404


async def test_an_unknown_state_filter_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.get(f"{DELIVERIES}?state=lost", headers=tenant.headers)

    assert response.status_code == 400
    assert "state: must be one of pending, delivered, failed" in response.json()["detail"]
