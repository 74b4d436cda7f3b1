"""An ANDROID SMS app through the native API: its registration token, the phones' received SMS
coming back through the app's inbound webhook URL (listed to phones when the public URL is
HTTPS), and a native send waking the app's phones."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import TenantFactory, TenantHandle
from tidings.config import Settings
from tidings.db.models import Message
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.pipeline.device_events import DeviceEvent, DeviceEventHub
from tidings.runtime import Runtime

PUBLIC_URL = "https://tidings.example.com"


@pytest.fixture(autouse=True)
def public_url(settings: Settings) -> str:
    settings.public_url = PUBLIC_URL
    return PUBLIC_URL


async def android_app(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers,
                                 json={"name": "Phones", "provider": "ANDROID"})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def register(client: httpx.AsyncClient, app: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/mobile/v1/device", json={"name": "Pixel 8"},
                                 headers={"Authorization": f"Bearer {app['registration_token']}"})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_an_android_app_shows_its_registration_token_and_default_config(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    app = await android_app(client, tenant)

    assert app["registration_token"].startswith(app["id"] + ".")
    assert app["provider_config"] == {"default_region": "RU", "privacy_hashing": False,
                                      "hashing_delay_seconds": 60}
    again = (await client.get(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers)).json()
    assert again["registration_token"] == app["registration_token"]


async def test_a_deleted_app_registers_no_phone_and_its_phones_get_401(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app = await android_app(client, tenant)
    device = await register(client, app)

    await client.delete(f"/sms/v1/apps/{app['id']}/", headers=tenant.headers)

    again = await client.post("/mobile/v1/device", json={},
                              headers={"Authorization": f"Bearer {app['registration_token']}"})
    pull = await client.get("/mobile/v1/message",
                            headers={"Authorization": f"Bearer {device['token']}"})
    assert (again.status_code, pull.status_code) == (401, 401)
    assert pull.json() == {"message": "unknown or deleted device", "code": "invalid_token"}


async def test_phones_are_told_to_send_received_sms_to_the_apps_inbound_url(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app = await android_app(client, tenant)
    device = await register(client, app)

    hooks = (await client.get("/mobile/v1/webhooks",
                              headers={"Authorization": f"Bearer {device['token']}"})).json()

    assert hooks == [
        {"id": "tidings-sms-received", "event": "sms:received", "deviceId": None,
         "url": app["inbound_webhook_url"]},
        {"id": "tidings-sms-data-received", "event": "sms:data-received", "deviceId": None,
         "url": app["inbound_webhook_url"]},
    ]


async def test_a_received_sms_posted_by_the_phone_is_stored_once_as_inbound(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app = await android_app(client, tenant)
    url = urlsplit(app["inbound_webhook_url"])
    body = {"id": "Ey6ECgOkVVFjz3CL48B8C", "webhookId": "tidings-sms-received",
            "deviceId": "0Ow5tHTHBmyy4VhqcHRsV", "event": "sms:received",
            "payload": {"messageId": "abc", "message": "STOP", "phoneNumber": "+79990001234",
                        "simNumber": 1, "receivedAt": "2026-11-24T11:59:00.000+00:00"}}

    for _ in range(2):  # the app retries until it gets a 2xx: a redelivery stores nothing
        response = await client.post(f"{url.path}?{url.query}", content=json.dumps(body),
                                     headers={"Content-Type": "application/json"})
        assert response.status_code == 200

    async with runtime.sessions() as session:
        stored = (await session.execute(select(Message))).scalars().all()
    assert [(m.direction, m.state, m.from_number, m.text, m.channel_account_id)
            for m in stored] == [("inbound", "received", "+79990001234", "STOP", app["id"])]


async def test_a_native_send_through_an_android_app_wakes_its_phones(
        app: FastAPI, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    android = await android_app(client, tenant)
    device = await register(client, android)
    hub: DeviceEventHub = app.state.device_events

    async with hub.subscribe(device["id"]) as events:
        response = await client.post("/sms/v1/messages/", headers=tenant.headers, json={
            "phone": "+79990001234", "text": "hi", "sms_app_id": android["id"]})
        assert response.status_code == 201
        woken = await asyncio.wait_for(events.get(), 2)

    assert woken == DeviceEvent("MessageEnqueued")
    pulled = (await client.get("/mobile/v1/message",
                               headers={"Authorization": f"Bearer {device['token']}"})).json()
    assert [(m["id"], m["phoneNumbers"], m["message"], m["state"]) for m in pulled] == [
        (response.json()["id"], ["+79990001234"], "hi", "Pending")]


async def test_a_broadcast_through_an_android_app_wakes_its_phones_and_they_pull_it(
        app: FastAPI, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    android = await android_app(client, tenant)
    device = await register(client, android)
    hub: DeviceEventHub = app.state.device_events

    async with hub.subscribe(device["id"]) as events:
        response = await client.post("/sms/v1/broadcast/", headers=tenant.headers, json={
            "phones": ["+79990001234", "+79990001235"], "text": "hi",
            "sms_app_id": android["id"]})
        assert response.status_code == 202, response.text
        woken = await asyncio.wait_for(events.get(), 2)

    assert woken == DeviceEvent("MessageEnqueued")
    pulled = (await client.get("/mobile/v1/message?order=fifo",
                               headers={"Authorization": f"Bearer {device['token']}"})).json()
    assert sorted(number for m in pulled for number in m["phoneNumbers"]) == [
        "+79990001234", "+79990001235"]


async def test_an_inbox_refresh_asks_the_login_s_phones_to_export_and_inbox_is_501(
        app: FastAPI, client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    android = await android_app(client, tenant)
    device = await register(client, android)
    basic = (device["login"], device["password"])
    hub: DeviceEventHub = app.state.device_events

    async with hub.subscribe(device["id"]) as events:
        response = await client.post("/3rdparty/v1/inbox/refresh", auth=basic, json={
            "since": "2026-11-23T00:00:00Z", "until": "2026-11-24T00:00:00Z"})
        assert response.status_code == 202
        asked = await asyncio.wait_for(events.get(), 2)

    assert asked == DeviceEvent("MessagesExportRequested", {
        "since": "2026-11-23T00:00:00.000000+00:00", "until": "2026-11-24T00:00:00.000000+00:00",
        "messageTypes": ["SMS"], "webhookDelivery": "Individual", "triggerWebhooks": True})
    inbox = await client.get("/3rdparty/v1/inbox", auth=basic)
    assert (inbox.status_code, inbox.json()["message"]) == (
        501, "only the phone implements this; use /inbox/refresh and an sms:received webhook")
    unknown = await client.post("/3rdparty/v1/inbox/refresh", auth=basic, json={
        "deviceId": "x" * 21, "since": "2026-11-23T00:00:00Z", "until": "2026-11-24T00:00:00Z"})
    assert unknown.status_code == 400


async def test_a_test_mode_key_reads_the_3rdparty_api_but_cannot_send_through_phones(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    android = await android_app(client, tenant)
    await register(client, android)
    test_key = await tenants.key(tenant, Role.OWNER, KeyMode.TEST)

    listed = await client.get("/3rdparty/v1/devices", headers=test_key)
    sent = await client.post("/3rdparty/v1/messages", headers=test_key, json={
        "textMessage": {"text": "hi"}, "phoneNumbers": ["+79990001234"]})

    assert listed.status_code == 200
    assert (sent.status_code, sent.json()["code"]) == (403, "test_mode_key")
    async with runtime.sessions() as session:
        assert (await session.execute(select(Message))).scalars().all() == []
