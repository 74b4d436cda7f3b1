"""``POST /api/v1/sms-providers/{slug}/send``: one SMS sent through the tenant's app for the
slug while the caller waits, answered with the provider's own JSON (each provider's fake on
loopback speaks its real wire format), and stored like any message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tests.fakes.infobip import FakeInfobip, request_error
from tests.fakes.server import serve_in_thread
from tests.fakes.twilio import FakeTwilio
from tests.pipeline.test_dispatcher import one_round
from tests.pipeline.test_new_providers_dispatch import PROVIDERS, Provider
from tidings.db.models import Message
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime

TWILIO_SID, TWILIO_TOKEN = "AC" + "0123456789abcdef" * 2, "5ec7e7a0b1c2d3e4f5a6b7c8d9e0f1a2"
TWILIO = Provider("TWILIO", "twilio", lambda: FakeTwilio({TWILIO_SID: TWILIO_TOKEN}),
                  {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}, {}, "+14155550000")
INFOBIP = PROVIDERS[0]
MOBILE = "966501234567"

# slug -> the top-level fields of the provider's own answer to an accepted send
ANSWERS = {
    "infobip-sms": {"bulkId", "messages"},
    "vonage-sms": {"message-count", "messages"},
    "unifonic-sms": {"success", "message", "errorCode", "data"},
    "taqnyat-sms": {"statusCode", "messageId", "cost", "currency", "totalCount",
                    "msgLength", "accepted", "rejected"},
    "msegat-sms": {"code", "message"},
    "fourjawaly-sms": {"code", "message", "job_id", "messages"},
    "cequens-sms": {"replyCode", "replyMessage", "requestId", "clientRequestId",
                    "requestTime", "data"},
    "mora-sms": {"status", "data"},
    # Twilio's answer without the account SID, the resource URIs and the message's contents
    "twilio-sms": {"sid", "status", "num_segments", "num_media", "direction", "date_created",
                   "messaging_service_sid", "price", "price_unit", "error_code",
                   "error_message"},
}


@pytest.fixture
def infobip(runtime: Runtime) -> Iterator[FakeInfobip]:
    fake = FakeInfobip([INFOBIP.credentials["api_key"]])
    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls["infobip"] = base_url
        yield fake
    runtime.settings.provider_urls.pop("infobip", None)


async def install(client: httpx.AsyncClient, tenant: TenantHandle, provider: Provider) -> None:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": provider.name, "provider": provider.name, "sender_id": provider.sender_id,
        "provider_credentials": provider.credentials, "provider_config": provider.config})
    assert response.status_code == 201, response.text


async def stored(runtime: Runtime, tenant: TenantHandle) -> list[Message]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(Message).where(
            Message.tenant_id == tenant.tenant_id))).scalars())


@pytest.mark.parametrize("provider", [*PROVIDERS, TWILIO], ids=lambda p: p.name)
async def test_the_answer_is_the_providers_own_json(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        provider: Provider) -> None:
    tenant = await tenants.create()
    await install(client, tenant, provider)
    fake = provider.fake()
    slug = f"{provider.slug}-sms"

    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls[provider.slug] = base_url
        try:
            response = await client.post(f"/api/v1/sms-providers/{slug}/send",
                                         headers=tenant.headers,
                                         json={"mobile": MOBILE, "message": "Your order is ready"})
        finally:
            del runtime.settings.provider_urls[provider.slug]

    assert response.status_code == 200, response.text
    assert set(response.json()) == ANSWERS[slug]
    [message] = await stored(runtime, tenant)
    assert (message.id, message.state, message.to_number, message.attempts) == (
        response.headers["X-Tidings-Message-Id"], "sent", "+966501234567", 1)
    assert message.provider_message_id
    assert len(fake.requests) == 1


async def test_a_provider_refusal_answers_400_and_fails_the_message(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP)
    infobip.fail_next(status=400, body=request_error("BAD_REQUEST", "Invalid destination"))

    response = await client.post("/api/v1/sms-providers/infobip-sms/send",
                                 headers=tenant.headers, json={"mobile": MOBILE, "message": "Hi"})

    [message] = await stored(runtime, tenant)
    assert (response.status_code, response.json()) == (400, {
        "error": "INFOBIP refused the message: BAD_REQUEST: Invalid destination",
        "code": "provider_rejected", "provider_code": "BAD_REQUEST", "id": message.id})
    assert (message.state, message.error_code) == ("failed", "BAD_REQUEST")


async def test_a_provider_that_does_not_answer_leaves_the_message_queued_for_the_pipeline(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, clock: FakeClock) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP)
    infobip.fail_next(status=503)

    response = await client.post("/api/v1/sms-providers/infobip-sms/send",
                                 headers=tenant.headers, json={"mobile": MOBILE, "message": "Hi"})
    [queued] = await stored(runtime, tenant)
    clock.advance(60)
    await one_round(Dispatcher(runtime))

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert (queued.id, queued.state, queued.attempts) == (response.json()["id"], "queued", 1)
    [message] = await stored(runtime, tenant)
    assert (message.state, message.attempts) == ("sent", 2)
    assert len(infobip.sends) == 1


async def test_a_future_datetime_schedules_the_message_instead(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, clock: FakeClock) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP)

    response = await client.post("/api/v1/sms-providers/infobip-sms/send",
                                 headers=tenant.headers,
                                 json={"mobile": MOBILE, "message": "Hi",
                                       "datetime": "2030-01-01T09:00:00"})

    [message] = await stored(runtime, tenant)
    assert (response.status_code, response.json()) == (202, {
        "id": message.id, "status": "scheduled", "datetime": "2030-01-01T09:00:00+00:00"})
    assert (message.state, infobip.requests) == ("queued", [])


async def test_a_test_mode_key_gets_the_simulators_answer(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP)
    headers = await tenants.key(tenant, Role.DEVELOPER, KeyMode.TEST)

    response = await client.post("/api/v1/sms-providers/infobip-sms/send", headers=headers,
                                 json={"mobile": MOBILE, "message": "Hi"})

    assert (response.status_code, response.json()) == (200, {"simulated": True})
    assert infobip.requests == []


@pytest.mark.parametrize(("body", "error"), [
    ({"mobile": "12", "message": "Hi"}, "mobile: not a valid phone number"),
    ({"mobile": MOBILE, "message": ""}, "message: "),
    ({"mobile": MOBILE, "message": "Hi", "datetime": "soon"},
     "datetime: must be an ISO 8601 date and time"),
    ({"message": "Hi"}, "mobile"),
    ({"mobile": MOBILE, "message": "Hi", "sender": "Sender name too long"},
     "sender: must be a number of up to 15 digits, or 1 to 11 letters"),
], ids=["bad mobile", "empty message", "bad datetime", "no mobile", "sender too long"])
async def test_bad_input_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, body: dict[str, Any], error: str) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP)

    response = await client.post("/api/v1/sms-providers/infobip-sms/send",
                                 headers=tenant.headers, json=body)

    assert response.status_code == 400
    assert error in response.json()["error"]
    assert await stored(runtime, tenant) == []
    assert infobip.requests == []


async def test_a_role_that_may_not_send_is_refused(
        client: httpx.AsyncClient, tenants: TenantFactory, infobip: FakeInfobip) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP)
    viewer = await tenants.key(tenant, Role.VIEWER)

    response = await client.post("/api/v1/sms-providers/infobip-sms/send", headers=viewer,
                                 json={"mobile": MOBILE, "message": "Hi"})

    assert response.status_code == 403
    assert infobip.requests == []


async def test_a_slug_without_an_app_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post("/api/v1/sms-providers/mora-sms/send", headers=tenant.headers,
                                 json={"mobile": MOBILE, "message": "Hi"})

    assert (response.status_code, response.json()["code"]) == (400, "app_not_installed")
