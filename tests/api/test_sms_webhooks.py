"""``/sms/v1/webhooks/{app_id}/dlr/`` and ``/inbound/`` through the real routes.

Twilio signs its webhooks (``X-Twilio-Signature`` over ``TIDINGS_PUBLIC_URL`` + path + query and
the sorted form parameters, computed here with the fake's own helper); MSG91 and Fast2SMS sign
nothing and are trusted by the per-app ``?token=`` their URLs carry. Verified first, then
applied: a refused webhook changes nothing, a redelivered one changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tests.fakes.server import serve_in_thread
from tests.fakes.twilio import FakeTwilio, post_inbound, signed_webhook, status_params
from tidings.config import Settings
from tidings.db.models import Message, MessageEvent, UnmatchedReport
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime

PUBLIC_URL = "https://tidings.example.com"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "5ec7e7a0b1c2d3e4f5a6b7c8d9e0f1a2"
OUR_NUMBER = "+15005550006"
US_PHONE = "+14155550100"
IN_PHONE = "+919876543210"
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@pytest.fixture(autouse=True)
def public_url(settings: Settings) -> str:
    settings.public_url = PUBLIC_URL
    return PUBLIC_URL


@dataclass(frozen=True)
class App:
    tenant: TenantHandle
    id: str
    dlr_url: str
    inbound_url: str

    @property
    def token(self) -> str:
        return self.dlr_url.partition("?token=")[2]


def _path(url: str) -> str:
    """The path and query of a public URL: what the ASGI client posts to."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def _create_app(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> App:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    made = response.json()
    return App(tenant, made["id"], made["dlr_webhook_url"], made["inbound_webhook_url"])


@pytest.fixture
async def twilio_app(client: httpx.AsyncClient, tenants: TenantFactory) -> App:
    tenant = await tenants.create()
    return await _create_app(client, tenant, name="Twilio", provider="TWILIO",
                             sender_id=OUR_NUMBER,
                             provider_credentials={"account_sid": SID, "auth_token": TOKEN})


@pytest.fixture
def fake_twilio(runtime: Runtime) -> Iterator[FakeTwilio]:
    """Twilio on 127.0.0.1, where the dispatcher sends this test's Twilio messages."""
    fake = FakeTwilio({SID: TOKEN})
    with serve_in_thread(fake.app) as base_url:
        runtime.settings.provider_urls["twilio"] = base_url
        yield fake


async def _send(client: httpx.AsyncClient, app: App, phone: str = US_PHONE,
                **body: Any) -> str:
    response = await client.post("/sms/v1/messages/", headers=app.tenant.headers, json={
        "phone": phone, "text": "Hello there", "sms_app_id": app.id, **body})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


async def _dispatch(runtime: Runtime) -> Dispatcher:
    """Claim and send what is due, without recording the outcomes yet."""
    dispatcher = Dispatcher(runtime)
    await dispatcher.claim_and_send()
    while dispatcher._tasks:
        await asyncio.gather(*list(dispatcher._tasks))
    return dispatcher


async def _mark_sent(runtime: Runtime, message_id: str, provider_message_id: str) -> None:
    """Record a send by hand (for providers whose send path other tests cover)."""
    async with runtime.sessions() as session:
        await session.execute(update(Message).where(Message.id == message_id).values(
            state="sent", provider_message_id=provider_message_id, attempts=1))
        await session.commit()


async def _message(runtime: Runtime, message_id: str) -> Message:
    async with runtime.sessions() as session:
        return (await session.execute(
            select(Message).where(Message.id == message_id))).scalar_one()


async def _events(runtime: Runtime, message_id: str) -> list[tuple[str, str | None]]:
    async with runtime.sessions() as session:
        rows = (await session.execute(
            select(MessageEvent.kind, MessageEvent.state_to)
            .where(MessageEvent.message_id == message_id).order_by(MessageEvent.id))).all()
    return [(row.kind, row.state_to) for row in rows]


async def _count(runtime: Runtime, model: type[Any]) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model)))
                   .scalar_one())


@pytest.fixture
async def sent_through_twilio(client: httpx.AsyncClient, twilio_app: App, runtime: Runtime,
                              fake_twilio: FakeTwilio) -> tuple[str, str]:
    """A message sent through the fake Twilio by the dispatcher: ``(message id, SM sid)``."""
    message_id = await _send(client, twilio_app)
    await (await _dispatch(runtime)).flush_results()
    stored = await _message(runtime, message_id)
    assert (stored.state, stored.provider_message_id) == ("sent", fake_twilio.messages[0].sid)
    return message_id, fake_twilio.messages[0].sid


async def _twilio_status(client: httpx.AsyncClient, app: App, sid: str,
                         status: str, **extra: str) -> httpx.Response:
    params = status_params(sid, status, account_sid=SID, to=US_PHONE, from_=OUR_NUMBER,
                           **extra)
    headers, content = signed_webhook(app.dlr_url, params, TOKEN)
    return await client.post(_path(app.dlr_url), content=content, headers=headers)


# --- Twilio status callbacks ---------------------------------------------------------------------


async def test_the_dispatcher_names_the_apps_dlr_url_as_status_callback(
        twilio_app: App, sent_through_twilio: tuple[str, str],
        fake_twilio: FakeTwilio) -> None:
    assert fake_twilio.messages[0].status_callback == twilio_app.dlr_url
    assert twilio_app.dlr_url == (
        f"{PUBLIC_URL}/sms/v1/webhooks/{twilio_app.id}/dlr/?token={twilio_app.token}")


async def test_a_signed_status_callback_moves_sent_to_delivered(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime, clock: FakeClock,
        sent_through_twilio: tuple[str, str]) -> None:
    message_id, sid = sent_through_twilio
    clock.advance(3)

    response = await _twilio_status(client, twilio_app, sid, "delivered")

    assert response.status_code == 200
    stored = await _message(runtime, message_id)
    assert (stored.state, stored.provider_status) == ("delivered", "delivered")
    assert stored.delivered_at == clock()
    assert await _events(runtime, message_id) == [("attempt", "sent"), ("report", "delivered")]


async def test_twilio_is_answered_with_empty_twiml(
        client: httpx.AsyncClient, twilio_app: App,
        sent_through_twilio: tuple[str, str]) -> None:
    response = await _twilio_status(client, twilio_app, sent_through_twilio[1], "delivered")

    assert response.headers["content-type"].startswith("text/xml")
    assert response.content == EMPTY_TWIML


async def test_a_redelivered_status_callback_changes_nothing(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime, clock: FakeClock,
        sent_through_twilio: tuple[str, str]) -> None:
    message_id, sid = sent_through_twilio
    await _twilio_status(client, twilio_app, sid, "delivered")
    before = await _message(runtime, message_id)
    clock.advance(60)

    again = await _twilio_status(client, twilio_app, sid, "delivered")

    assert (again.status_code, again.content) == (200, EMPTY_TWIML)
    after = await _message(runtime, message_id)
    assert (after.state, after.delivered_at, after.updated_at) == (
        "delivered", before.delivered_at, before.updated_at)
    assert await _events(runtime, message_id) == [("attempt", "sent"), ("report", "delivered")]


async def test_a_late_sent_callback_does_not_undo_delivered(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime,
        sent_through_twilio: tuple[str, str]) -> None:
    message_id, sid = sent_through_twilio
    await _twilio_status(client, twilio_app, sid, "delivered")

    response = await _twilio_status(client, twilio_app, sid, "sent")

    assert response.status_code == 200
    assert (await _message(runtime, message_id)).state == "delivered"


async def test_an_undelivered_callback_fails_the_message_with_twilios_code(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime,
        sent_through_twilio: tuple[str, str]) -> None:
    message_id, sid = sent_through_twilio

    await _twilio_status(client, twilio_app, sid, "undelivered", error_code="30003",
                         error_message="Unreachable destination handset")

    stored = await _message(runtime, message_id)
    assert (stored.state, stored.error_code, stored.error_detail) == (
        "failed", "30003", "Unreachable destination handset")


async def test_an_unknown_status_word_is_answered_200_and_recorded(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime,
        sent_through_twilio: tuple[str, str]) -> None:
    message_id, sid = sent_through_twilio

    response = await _twilio_status(client, twilio_app, sid, "partially_delivered")

    assert response.status_code == 200
    assert (await _message(runtime, message_id)).state == "sent"
    assert await _events(runtime, message_id) == [("attempt", "sent"), ("unknown_status", None)]


def _signed_for(url: str, params: dict[str, str]) -> dict[str, str]:
    return signed_webhook(url, params, TOKEN)[0]


REFUSED_SIGNATURES: list[tuple[str, Any]] = [
    # label, headers given the status params and the app's signed DLR URL
    ("missing", lambda params, url: {"Content-Type": "application/x-www-form-urlencoded"}),
    ("garbage", lambda params, url: {"Content-Type": "application/x-www-form-urlencoded",
                                     "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}),
    ("other-token", lambda params, url: signed_webhook(url, params, "f" * 32)[0]),
    ("url-without-query", lambda params, url: _signed_for(url.partition("?")[0], params)),
    ("testserver-url", lambda params, url: _signed_for(
        "http://testserver" + _path(url), params)),
    ("other-params", lambda params, url: _signed_for(url, {**params,
                                                           "MessageStatus": "failed"})),
]


@pytest.mark.parametrize("make_headers", [case[1] for case in REFUSED_SIGNATURES],
                         ids=[case[0] for case in REFUSED_SIGNATURES])
async def test_a_bad_or_missing_signature_answers_403_and_changes_nothing(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime,
        sent_through_twilio: tuple[str, str], make_headers: Any) -> None:
    message_id, sid = sent_through_twilio
    params = status_params(sid, "delivered", account_sid=SID, to=US_PHONE, from_=OUR_NUMBER)

    response = await client.post(_path(twilio_app.dlr_url), content=urlencode(params),
                                 headers=make_headers(params, twilio_app.dlr_url))

    assert response.status_code == 403
    assert response.json()["code"] == "webhook_verification_failed"
    assert (await _message(runtime, message_id)).state == "sent"
    assert await _events(runtime, message_id) == [("attempt", "sent")]
    assert await _count(runtime, UnmatchedReport) == 0


async def test_a_webhook_for_an_unknown_app_answers_404(
        client: httpx.AsyncClient, twilio_app: App) -> None:
    unknown = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    url = f"{PUBLIC_URL}/sms/v1/webhooks/{unknown}/dlr/?token={twilio_app.token}"
    params = status_params("SM" + "0" * 32, "delivered", account_sid=SID, to=US_PHONE,
                           from_=OUR_NUMBER)
    headers, content = signed_webhook(url, params, TOKEN)

    response = await client.post(_path(url), content=content, headers=headers)

    assert (response.status_code, response.json()["code"]) == (404, "sms_app_not_found")


async def test_a_webhook_for_a_deleted_app_answers_404(
        client: httpx.AsyncClient, twilio_app: App) -> None:
    await client.delete(f"/sms/v1/apps/{twilio_app.id}/", headers=twilio_app.tenant.headers)

    response = await _twilio_status(client, twilio_app, "SM" + "0" * 32, "delivered")

    assert response.status_code == 404


# --- a report faster than the dispatcher ---------------------------------------------------------


async def test_a_report_that_arrives_before_the_send_is_recorded_is_applied_later(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime,
        fake_twilio: FakeTwilio) -> None:
    message_id = await _send(client, twilio_app)
    dispatcher = await _dispatch(runtime)  # Twilio has it; its answer is not recorded yet
    sid = fake_twilio.messages[0].sid

    early = await _twilio_status(client, twilio_app, sid, "delivered")

    assert early.status_code == 200
    assert (await _message(runtime, message_id)).state == "sending"
    assert await _count(runtime, UnmatchedReport) == 1

    await dispatcher.flush_results()

    stored = await _message(runtime, message_id)
    assert (stored.state, stored.provider_message_id) == ("delivered", sid)
    assert await _events(runtime, message_id) == [("attempt", "sent"), ("report", "delivered")]
    assert await _count(runtime, UnmatchedReport) == 0


# --- Twilio inbound ------------------------------------------------------------------------------


async def test_an_inbound_sms_is_stored_and_listed_as_inbound(
        client: httpx.AsyncClient, twilio_app: App) -> None:
    response = await post_inbound(client, twilio_app.inbound_url, TOKEN, account_sid=SID,
                                  from_="+14155550177", to=OUR_NUMBER, body="STOP please",
                                  message_sid="SM" + "1" * 32)

    assert (response.status_code, response.content) == (200, EMPTY_TWIML)
    listed = (await client.get("/sms/v1/messages/", headers=twilio_app.tenant.headers,
                               params={"direction": "inbound"})).json()
    assert [{key: m[key] for key in ("direction", "state", "phone", "sender_id", "text",
                                     "sms_app_id", "provider_message_id")}
            for m in listed["results"]] == [
        {"direction": "inbound", "state": "received", "phone": OUR_NUMBER,
         "sender_id": "+14155550177", "text": "STOP please", "sms_app_id": twilio_app.id,
         "provider_message_id": "SM" + "1" * 32}]


async def test_a_redelivered_inbound_sms_is_stored_once(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime) -> None:
    for _ in range(2):
        response = await post_inbound(client, twilio_app.inbound_url, TOKEN, account_sid=SID,
                                      from_="+14155550177", to=OUR_NUMBER, body="STOP",
                                      message_sid="SM" + "2" * 32)
        assert response.status_code == 200

    assert await _count(runtime, Message) == 1


async def test_an_unsigned_inbound_sms_answers_403_and_stores_nothing(
        client: httpx.AsyncClient, twilio_app: App, runtime: Runtime) -> None:
    response = await post_inbound(client, twilio_app.inbound_url, "0" * 32, account_sid=SID,
                                  from_="+14155550177", to=OUR_NUMBER, body="hi")

    assert response.status_code == 403
    assert await _count(runtime, Message) == 0


async def test_an_inbound_sms_is_not_listed_for_another_tenant(
        client: httpx.AsyncClient, twilio_app: App, tenants: TenantFactory) -> None:
    await post_inbound(client, twilio_app.inbound_url, TOKEN, account_sid=SID,
                       from_="+14155550177", to=OUR_NUMBER, body="hi")
    other = await tenants.create()

    listed = await client.get("/sms/v1/messages/", headers=other.headers,
                              params={"direction": "inbound"})

    assert listed.json()["count"] == 0


# --- MSG91 and Fast2SMS: token-checked ------------------------------------------------------------


@pytest.fixture
async def india_tenant(client: httpx.AsyncClient, tenants: TenantFactory) -> TenantHandle:
    tenant = await tenants.create(region="IN")
    made = await client.post("/sms/v1/templates/", headers=tenant.headers, json={
        "dlt_template_id": "1107161234567890123", "body": "Your Acme code is {#var#}."})
    assert made.status_code == 201, made.text
    return tenant


async def _india_message(client: httpx.AsyncClient, runtime: Runtime, app: App,
                         provider_message_id: str) -> str:
    message_id = await _send(client, app, phone=IN_PHONE, text="Your Acme code is 482913.",
                             dlt_template_id="1107161234567890123")
    await _mark_sent(runtime, message_id, provider_message_id)
    return message_id


@pytest.fixture
async def msg91_app(client: httpx.AsyncClient, india_tenant: TenantHandle) -> App:
    return await _create_app(client, india_tenant, name="MSG91", provider="MSG91",
                             sender_id="ACMEIN", dlt_entity_id="1101456789012345678",
                             provider_credentials={"auth_key": "Msg91SecretAuthKey0001"})


@pytest.fixture
async def fast2sms_app(client: httpx.AsyncClient, india_tenant: TenantHandle) -> App:
    return await _create_app(client, india_tenant, name="Fast2SMS", provider="FAST2SMS",
                             sender_id="ACMEIN", dlt_entity_id="1101456789012345678",
                             provider_credentials={"api_key": "Fast2smsSecretApiKey0001"})


def _msg91_v2(request_id: str, status: str, desc: str) -> bytes:
    data = [{"senderId": "ACMEIN", "requestId": request_id, "userId": "312345",
             "campaignName": "API", "report": [
                 {"date": "2026-11-24 17:31:00", "number": "919876543210", "status": status,
                  "desc": desc, "amount": "0.18", "clientid": "", "INMSID": "", "CRQID": "",
                  "ctCode": "", "credit": "1", "failedReason": ""}]}]
    return urlencode({"data": json.dumps(data)}).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_an_msg91_v2_delivery_report_is_applied(
        client: httpx.AsyncClient, msg91_app: App, runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, msg91_app, "3a6b7c8d9e0f1a2b3c4d5e6f")

    response = await client.post(_path(msg91_app.dlr_url), headers=FORM,
                                 content=_msg91_v2("3a6b7c8d9e0f1a2b3c4d5e6f", "1", "DELIVERED"))

    assert response.status_code == 200
    stored = await _message(runtime, message_id)
    assert (stored.state, stored.provider_status) == ("delivered", "1")
    assert stored.delivered_at is not None
    assert stored.delivered_at.isoformat() == "2026-11-24T12:01:00+00:00"  # 17:31 IST


async def test_an_msg91_failure_report_keeps_msg91s_reason(
        client: httpx.AsyncClient, msg91_app: App, runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, msg91_app, "3a6b7c8d9e0f1a2b3c4d5e6f")

    await client.post(_path(msg91_app.dlr_url), headers=FORM,
                      content=_msg91_v2("3a6b7c8d9e0f1a2b3c4d5e6f", "9", "NDNC"))

    stored = await _message(runtime, message_id)
    assert (stored.state, stored.error_detail) == ("failed", "NDNC")


async def test_a_fast2sms_delivery_report_is_applied(
        client: httpx.AsyncClient, fast2sms_app: App, runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, fast2sms_app, "F2Sreq0000000001")

    response = await client.post(_path(fast2sms_app.dlr_url), json={
        "request_id": "F2Sreq0000000001", "mobile": "9876543210", "status": "Delivered",
        "status_description": "Delivered", "sender_id": "ACMEIN", "route": "dlt_manual"})

    assert response.status_code == 200
    stored = await _message(runtime, message_id)
    assert (stored.state, stored.provider_status) == ("delivered", "Delivered")


async def test_a_fast2sms_form_report_is_applied(
        client: httpx.AsyncClient, fast2sms_app: App, runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, fast2sms_app, "F2Sreq0000000002")

    await client.post(_path(fast2sms_app.dlr_url), headers=FORM, content=urlencode({
        "request_id": "F2Sreq0000000002", "status": "Failed",
        "status_description": "Absent subscriber"}))

    stored = await _message(runtime, message_id)
    assert (stored.state, stored.error_detail) == ("failed", "Absent subscriber")


TOKEN_REFUSALS = [("wrong", "?token=not-the-token"), ("missing", ""), ("empty", "?token=")]


@pytest.mark.parametrize("query", [case[1] for case in TOKEN_REFUSALS],
                         ids=[case[0] for case in TOKEN_REFUSALS])
async def test_an_msg91_report_without_the_apps_token_answers_403_and_changes_nothing(
        client: httpx.AsyncClient, msg91_app: App, runtime: Runtime, query: str) -> None:
    message_id = await _india_message(client, runtime, msg91_app, "3a6b7c8d9e0f1a2b3c4d5e6f")

    response = await client.post(f"/sms/v1/webhooks/{msg91_app.id}/dlr/{query}", headers=FORM,
                                 content=_msg91_v2("3a6b7c8d9e0f1a2b3c4d5e6f", "1", "DELIVERED"))

    assert (response.status_code, response.json()["code"]) == (
        403, "webhook_verification_failed")
    assert (await _message(runtime, message_id)).state == "sent"
    assert await _events(runtime, message_id) == []


@pytest.mark.parametrize("query", [case[1] for case in TOKEN_REFUSALS],
                         ids=[case[0] for case in TOKEN_REFUSALS])
async def test_a_fast2sms_report_without_the_apps_token_answers_403_and_changes_nothing(
        client: httpx.AsyncClient, fast2sms_app: App, runtime: Runtime, query: str) -> None:
    message_id = await _india_message(client, runtime, fast2sms_app, "F2Sreq0000000001")

    response = await client.post(f"/sms/v1/webhooks/{fast2sms_app.id}/dlr/{query}", json={
        "request_id": "F2Sreq0000000001", "status": "Delivered"})

    assert response.status_code == 403
    assert (await _message(runtime, message_id)).state == "sent"


async def test_another_apps_token_is_refused(
        client: httpx.AsyncClient, msg91_app: App, fast2sms_app: App, runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, msg91_app, "3a6b7c8d9e0f1a2b3c4d5e6f")

    response = await client.post(f"/sms/v1/webhooks/{msg91_app.id}/dlr/?token="
                                 f"{fast2sms_app.token}", headers=FORM,
                                 content=_msg91_v2("3a6b7c8d9e0f1a2b3c4d5e6f", "1", "DELIVERED"))

    assert response.status_code == 403
    assert (await _message(runtime, message_id)).state == "sent"


async def test_a_malformed_report_answers_400_and_changes_nothing(
        client: httpx.AsyncClient, msg91_app: App, runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, msg91_app, "3a6b7c8d9e0f1a2b3c4d5e6f")

    response = await client.post(_path(msg91_app.dlr_url), headers=FORM,
                                 content=urlencode({"data": "not json"}))

    assert (response.status_code, response.json()["code"]) == (400, "webhook_payload_invalid")
    assert (await _message(runtime, message_id)).state == "sent"


async def test_a_report_for_another_apps_message_is_not_applied(
        client: httpx.AsyncClient, msg91_app: App, fast2sms_app: App, runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, fast2sms_app, "F2Sreq0000000001")

    await client.post(_path(msg91_app.dlr_url), headers=FORM,
                      content=_msg91_v2("F2Sreq0000000001", "1", "DELIVERED"))

    assert (await _message(runtime, message_id)).state == "sent"


# --- served by the webhook lane (before FastAPI's routing) ---------------------------------------


async def test_a_refused_webhook_answers_in_the_native_error_shape(
        client: httpx.AsyncClient, msg91_app: App) -> None:
    response = await client.post(f"/sms/v1/webhooks/{msg91_app.id}/dlr/?token=wrong",
                                 headers=FORM, content=urlencode({"data": "[]"}))

    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "webhook_verification_failed"


async def test_webhooks_are_counted_in_metrics_by_route_template(
        client: httpx.AsyncClient, msg91_app: App, runtime: Runtime) -> None:
    await _india_message(client, runtime, msg91_app, "3a6b7c8d9e0f1a2b3c4d5e6f")
    await client.post(_path(msg91_app.dlr_url), headers=FORM,
                      content=_msg91_v2("3a6b7c8d9e0f1a2b3c4d5e6f", "1", "DELIVERED"))

    text = (await client.get("/metrics")).text

    assert ('tidings_http_requests_total{method="POST",route="/sms/v1/webhooks/{app_id}/dlr/",'
            'status="200"} 1.0') in text
    assert msg91_app.id not in text


@pytest.fixture
def small_body_limit(settings: Settings) -> int:
    settings.max_request_bytes = 2000
    return settings.max_request_bytes


async def test_a_webhook_body_over_the_limit_answers_413_and_changes_nothing(
        small_body_limit: int, client: httpx.AsyncClient, msg91_app: App,
        runtime: Runtime) -> None:
    message_id = await _india_message(client, runtime, msg91_app, "3a6b7c8d9e0f1a2b3c4d5e6f")
    padding = "x" * small_body_limit

    response = await client.post(
        _path(msg91_app.dlr_url), headers=FORM,
        content=_msg91_v2("3a6b7c8d9e0f1a2b3c4d5e6f", "1", "DELIVERED") + b"&pad=" +
        padding.encode())

    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    assert (await _message(runtime, message_id)).state == "sent"


async def test_a_get_on_a_webhook_url_answers_405(
        client: httpx.AsyncClient, msg91_app: App) -> None:
    response = await client.get(_path(msg91_app.dlr_url))

    assert response.status_code == 405
