"""A message's whole life through the native API: accepted, claimed, sent through the
simulator, reported delivered; the history shows every step."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import FakeClock, TenantFactory
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime
from tidings.services.sms_upkeep import deliver_simulator_reports


async def _drain(runtime: Runtime) -> Dispatcher:
    dispatcher = Dispatcher(runtime)
    await dispatcher.claim_and_send()
    while dispatcher._tasks:
        await asyncio.gather(*list(dispatcher._tasks))
    await dispatcher.flush_results()
    return dispatcher


async def test_a_simulator_message_is_sent_then_delivered(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    made = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": "Sim", "provider": "SIMULATOR", "sender_id": "Tidings",
        "provider_config": {"delay_ms": 1000}})
    assert made.status_code == 201, made.text
    sent = await client.post("/sms/v1/messages/", headers=tenant.headers,
                             json={"phone": "+14155550132", "text": "Hello there"})
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert (body["state"], body["segments"], body["encoding"]) == ("queued", 1, "GSM-7")

    await _drain(runtime)
    after_send = (await client.get(f"/sms/v1/messages/{body['id']}/",
                                   headers=tenant.headers)).json()
    assert after_send["state"] == "sent"
    assert after_send["provider_message_id"] == f"sim-{body['id']}"

    clock.advance(1.5)
    async with runtime.sessions() as session:
        assert await deliver_simulator_reports(session, clock()) == 1
        await session.commit()
    final = (await client.get(f"/sms/v1/messages/{body['id']}/",
                              headers=tenant.headers)).json()
    assert final["state"] == "delivered"
    assert [(e["kind"], e["state_to"]) for e in final["events"]] == [
        ("accepted", "queued"), ("attempt", "sent"), ("report", "delivered")]
