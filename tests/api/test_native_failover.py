"""Failover through the native API: ``failover_sms_app_ids`` on a send gives the message the
same route the outbox uses; a provider that rejects or fails hands it to the next app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_outbox import INFOBIP_APP, VONAGE_APP, infobip, install, vonage
from tests.conftest import TenantFactory
from tests.fakes.infobip import FakeInfobip, request_error
from tests.fakes.vonage import FakeVonage
from tests.pipeline.test_dispatcher import one_round
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime

__all__ = ["infobip", "vonage"]  # fixtures


async def test_a_rejected_message_goes_on_to_its_failover_app(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, vonage: FakeVonage) -> None:
    tenant = await tenants.create()
    infobip_app = await install(client, tenant, INFOBIP_APP)
    vonage_app = await install(client, tenant, VONAGE_APP)
    infobip.fail_next(status=400, body=request_error("BAD_REQUEST", "Invalid destination"))
    sent = await client.post("/sms/v1/messages/", headers=tenant.headers, json={
        "phone": "+966501234567", "text": "Hello", "sms_app_id": infobip_app,
        "failover_sms_app_ids": [vonage_app]})
    assert sent.status_code == 201, sent.text

    dispatcher = Dispatcher(runtime)
    await one_round(dispatcher)
    await one_round(dispatcher)

    message = (await client.get(f"/sms/v1/messages/{sent.json()['id']}/",
                                headers=tenant.headers)).json()
    assert (message["state"], message["sms_app_id"], message["sender_id"]) == (
        "sent", vonage_app, "Acme")
    assert (len(infobip.requests), len(vonage.sends)) == (1, 1)


async def test_without_failover_apps_a_rejected_message_fails(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, vonage: FakeVonage) -> None:
    tenant = await tenants.create()
    infobip_app = await install(client, tenant, INFOBIP_APP)
    await install(client, tenant, VONAGE_APP)
    infobip.fail_next(status=400, body=request_error("BAD_REQUEST", "Invalid destination"))
    sent = await client.post("/sms/v1/messages/", headers=tenant.headers, json={
        "phone": "+966501234567", "text": "Hello", "sms_app_id": infobip_app})

    await one_round(Dispatcher(runtime))
    await one_round(Dispatcher(runtime))

    message = (await client.get(f"/sms/v1/messages/{sent.json()['id']}/",
                                headers=tenant.headers)).json()
    assert (message["state"], message["error_code"]) == ("failed", "BAD_REQUEST")
    assert vonage.requests == []


@pytest.mark.parametrize(("failover", "message"), [
    (["01JUNKNOWNAPP0000000000000"], "no SMS app 01JUNKNOWNAPP0000000000000"),
    (["SELF"], "must name other apps, each once"),
    (["OTHER", "OTHER"], "must name other apps, each once"),
], ids=["unknown app", "its own app", "an app twice"])
async def test_bad_failover_apps_answer_400_naming_the_field(
        client: httpx.AsyncClient, tenants: TenantFactory, failover: list[str],
        message: str) -> None:
    tenant = await tenants.create()
    own = await install(client, tenant, INFOBIP_APP)
    other = await install(client, tenant, VONAGE_APP)
    ids = [{"SELF": own, "OTHER": other}.get(value, value) for value in failover]

    response = await client.post("/sms/v1/messages/", headers=tenant.headers, json={
        "phone": "+966501234567", "text": "Hello", "sms_app_id": own,
        "failover_sms_app_ids": ids})

    body: dict[str, Any] = response.json()
    assert response.status_code == 400
    assert body["errors"] == [{"field": "failover_sms_app_ids", "message": message}]
