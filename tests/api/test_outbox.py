"""``/api/v1/sms/outbox``: a job goes through the tenant's SMS apps in order (the preferred one
first), the first provider that accepts finalises it, a provider that rejects or fails hands it
to the next at once, and every attempt is shown. The providers are their wire-accurate fakes
on loopback; the real dispatcher sends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tests.fakes.infobip import FakeInfobip, request_error
from tests.fakes.server import serve_in_thread
from tests.fakes.vonage import FakeVonage
from tests.pipeline.test_dispatcher import one_round
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime

INFOBIP_KEY = "957df92101cfd4e4e74ce44cf5ab68b9-6e2ec23a-46bc-4597-b341-35c0ae0b3b95"
VONAGE_KEY, VONAGE_SECRET = "a1b2c3d4", "Xy7kQ2mN9pL4sT1v"
INFOBIP_APP = {"name": "Infobip", "provider": "INFOBIP", "sender_id": "InfoSMS",
               "provider_credentials": {"api_key": INFOBIP_KEY},
               "provider_config": {"base_url": "https://e1zz23.api.infobip.com"},
               "rate_limit": "1000/s"}
VONAGE_APP = {"name": "Vonage", "provider": "VONAGE", "sender_id": "Acme",
              "provider_credentials": {"api_key": VONAGE_KEY, "api_secret": VONAGE_SECRET},
              "rate_limit": "1000/s"}
MOBILE = "966501234567"


@pytest.fixture
def infobip(runtime: Runtime) -> Iterator[FakeInfobip]:
    fake = FakeInfobip([INFOBIP_KEY])
    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls["infobip"] = base_url
        yield fake
    runtime.settings.provider_urls.pop("infobip", None)


@pytest.fixture
def vonage(runtime: Runtime) -> Iterator[FakeVonage]:
    fake = FakeVonage({VONAGE_KEY: VONAGE_SECRET})
    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls["vonage"] = base_url
        yield fake
    runtime.settings.provider_urls.pop("vonage", None)


async def install(client: httpx.AsyncClient, tenant: TenantHandle, app: dict[str, Any]) -> str:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json=app)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def submit(client: httpx.AsyncClient, tenant: TenantHandle, **fields: Any) -> str:
    response = await client.post("/api/v1/sms/outbox", headers=tenant.headers,
                                 json={"mobile": MOBILE, "message": "Your order is ready",
                                       **fields})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def job(client: httpx.AsyncClient, tenant: TenantHandle, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sms/outbox/{job_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def attempts(body: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["provider_slug"], a["outcome"], a["code"]) for a in body["attempts"]]


async def test_a_job_is_accepted_pending_with_its_meta(
        client: httpx.AsyncClient, tenants: TenantFactory, infobip: FakeInfobip) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)

    response = await client.post("/api/v1/sms/outbox", headers=tenant.headers, json={
        "mobile": MOBILE, "message": "Your order is ready", "meta": {"order": 1042}})

    assert response.status_code == 202
    accepted = response.json()
    assert accepted == {"id": accepted["id"], "dispatch_status": "pending",
                        "idempotent_replay": False}
    shown = await job(client, tenant, accepted["id"])
    assert (shown["dispatch_status"], shown["mobile"], shown["meta"], shown["attempts"]) == (
        "pending", "+966501234567", {"order": 1042}, [])
    assert infobip.requests == []


async def test_the_first_provider_that_accepts_finalises_the_job(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, vonage: FakeVonage) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    vonage_app = await install(client, tenant, VONAGE_APP)
    infobip.fail_next(status=400, body=request_error("BAD_REQUEST", "Invalid destination"))
    job_id = await submit(client, tenant)

    dispatcher = Dispatcher(runtime)
    await one_round(dispatcher)
    await one_round(dispatcher)
    await one_round(dispatcher)

    shown = await job(client, tenant, job_id)
    assert shown["dispatch_status"] == "sent"
    assert (shown["sms_app_id"], shown["provider_slug"]) == (vonage_app, "vonage-sms")
    assert shown["provider_message_id"] == vonage.sends[0].message_ids[0]
    assert attempts(shown) == [("infobip-sms", "reject", "BAD_REQUEST"),
                               ("vonage-sms", "accepted", None)]
    assert (len(infobip.requests), len(vonage.sends)) == (1, 1)


async def test_a_provider_that_fails_hands_the_job_to_the_next_at_once(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, vonage: FakeVonage) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    await install(client, tenant, VONAGE_APP)
    infobip.fail_next(status=503)
    job_id = await submit(client, tenant)

    dispatcher = Dispatcher(runtime)
    await one_round(dispatcher)
    await one_round(dispatcher)  # the clock has not moved: no backoff between the apps

    shown = await job(client, tenant, job_id)
    assert shown["dispatch_status"] == "sent"
    assert attempts(shown) == [("infobip-sms", "retry", "GENERAL_ERROR"),
                               ("vonage-sms", "accepted", None)]


async def test_the_preferred_provider_is_tried_first(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, vonage: FakeVonage) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    await install(client, tenant, VONAGE_APP)
    job_id = await submit(client, tenant, preferred_provider_slug="vonage-sms")

    await one_round(Dispatcher(runtime))

    shown = await job(client, tenant, job_id)
    assert attempts(shown) == [("vonage-sms", "accepted", None)]
    assert (infobip.requests, len(vonage.sends)) == ([], 1)


async def test_a_job_every_provider_rejects_fails_without_trying_any_twice(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, vonage: FakeVonage) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    await install(client, tenant, VONAGE_APP)
    infobip.fail_next(status=400, body=request_error("BAD_REQUEST", "Invalid destination"))
    vonage.refuse("966501234567", "7", "Number barred.")
    job_id = await submit(client, tenant)

    dispatcher = Dispatcher(runtime)
    for _ in range(4):
        await one_round(dispatcher)

    shown = await job(client, tenant, job_id)
    assert shown["dispatch_status"] == "failed"
    assert [outcome for _, outcome, _ in attempts(shown)] == ["reject", "reject"]
    assert shown["error"]["code"] == "7"
    assert (len(infobip.requests), len(vonage.requests)) == (1, 1)


async def test_after_a_whole_round_fails_the_job_waits_for_the_backoff(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, vonage: FakeVonage, clock: FakeClock) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    await install(client, tenant, VONAGE_APP)
    infobip.fail_next(status=503)
    vonage.fail_next(status=503)
    job_id = await submit(client, tenant)
    dispatcher = Dispatcher(runtime)
    await one_round(dispatcher)
    await one_round(dispatcher)

    waiting = await job(client, tenant, job_id)
    await one_round(dispatcher)  # nothing is due before the backoff
    clock.advance(60)
    await one_round(dispatcher)

    assert waiting["dispatch_status"] == "sending"
    assert attempts(waiting) == [("infobip-sms", "retry", "GENERAL_ERROR"),
                                 ("vonage-sms", "retry", "http_503")]
    shown = await job(client, tenant, job_id)
    assert attempts(shown)[2:] == [("infobip-sms", "accepted", None)]
    assert shown["dispatch_status"] == "sent"


async def test_a_job_not_sent_by_its_deadline_ends_dispatch_timeout(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, clock: FakeClock) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    infobip.fail_next(count=100, status=503)
    job_id = await submit(client, tenant)
    dispatcher = Dispatcher(runtime)
    await one_round(dispatcher)

    clock.advance(runtime.settings.outbox_dispatch_timeout_seconds + 1)
    await one_round(dispatcher)

    shown = await job(client, tenant, job_id)
    assert shown["dispatch_status"] == "dispatch_timeout"
    assert len(infobip.requests) == 1


async def test_a_repeated_idempotency_key_answers_the_same_job_and_sends_once(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    first = await client.post("/api/v1/sms/outbox", headers=tenant.headers, json={
        "mobile": MOBILE, "message": "Your order is ready", "idempotency_key": "order-1042"})
    await one_round(Dispatcher(runtime))

    again = await client.post("/api/v1/sms/outbox", headers=tenant.headers, json={
        "mobile": MOBILE, "message": "Something else", "idempotency_key": "order-1042"})
    await one_round(Dispatcher(runtime))

    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "dispatch_status": "sent",
                            "idempotent_replay": True}
    assert len(infobip.sends) == 1


async def test_the_same_idempotency_key_of_another_tenant_is_another_job(
        client: httpx.AsyncClient, tenants: TenantFactory, infobip: FakeInfobip) -> None:
    first, second = await tenants.create(), await tenants.create()
    for tenant in (first, second):
        await install(client, tenant, INFOBIP_APP)

    ids = {await submit(client, tenant, idempotency_key="order-1042")
           for tenant in (first, second)}

    assert len(ids) == 2


@pytest.mark.parametrize(("fields", "error"), [
    ({"preferred_provider_slug": "nope-sms"}, "unknown provider slug 'nope-sms'"),
    ({"preferred_provider_slug": "vonage-sms"}, "no VONAGE app is installed"),
    ({"mobile": "12"}, "mobile: not a valid phone number"),
    ({"message": " "}, "message: "),
    ({"datetime": "next tuesday"}, "datetime: must be an ISO 8601 date and time"),
    ({"meta": {"blob": "x" * 5000}}, "meta: must be at most 4096 bytes of JSON"),
    ({"idempotency_key": ""}, "idempotency_key: must be 1 to 128 characters"),
    ({"sender": "Sender name too long"}, "sender: must be a number of up to 15 digits"),
], ids=["unknown slug", "slug not installed", "bad mobile", "empty message", "bad datetime",
        "meta too large", "empty idempotency key", "sender too long"])
async def test_bad_input_answers_400_with_an_error_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, infobip: FakeInfobip,
        fields: dict[str, Any], error: str) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)

    response = await client.post("/api/v1/sms/outbox", headers=tenant.headers,
                                 json={"mobile": MOBILE, "message": "Hi", **fields})

    assert response.status_code == 400
    assert error in response.json()["error"]
    listed = await client.get("/sms/v1/messages/", headers=tenant.headers)
    assert listed.json()["results"] == []


async def test_a_tenant_without_an_sms_app_is_told_to_install_one(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()

    response = await client.post("/api/v1/sms/outbox", headers=tenant.headers,
                                 json={"mobile": MOBILE, "message": "Hi"})

    assert (response.status_code, response.json()["code"]) == (400, "no_sms_app")


async def test_another_tenants_job_is_not_found(
        client: httpx.AsyncClient, tenants: TenantFactory, infobip: FakeInfobip) -> None:
    owner, other = await tenants.create(), await tenants.create()
    await install(client, owner, INFOBIP_APP)
    job_id = await submit(client, owner)

    response = await client.get(f"/api/v1/sms/outbox/{job_id}", headers=other.headers)

    assert (response.status_code, response.json()) == (
        404, {"error": f"no outbox job {job_id}", "code": "outbox_job_not_found"})


async def test_a_scheduled_job_waits_for_its_time(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip, clock: FakeClock) -> None:
    tenant = await tenants.create()
    await install(client, tenant, INFOBIP_APP)
    when = clock() + timedelta(hours=2)
    job_id = await submit(client, tenant, datetime=when.isoformat())

    await one_round(Dispatcher(runtime))
    early = await job(client, tenant, job_id)
    clock.advance(2 * 3600)
    await one_round(Dispatcher(runtime))

    assert early["dispatch_status"] == "pending"
    assert early["deadline"] is not None
    assert (await job(client, tenant, job_id))["dispatch_status"] == "sent"
