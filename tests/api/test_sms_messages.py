"""``/sms/v1/messages/``: send (and its ``/send/`` alias), list with filters, read one with its
history, cancel.

A send is validated in full before anything is stored: every refusal below answers 400 (402 for
an empty wallet, 409 for a repeated ``client_ref``) and leaves the messages table as it was.
The dispatcher is driven by hand (``_drain``) where a test needs a message to move on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tidings.db.models import Message
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.pipeline.dispatcher import Dispatcher
from tidings.providers.base import InboundMessage
from tidings.runtime import Runtime
from tidings.services.reports import store_inbound
from tidings.services.sms_apps import get_sms_app
from tidings.services.wallet import credit_wallet

US_PHONE = "+14155550100"
IN_PHONE = "+919876543210"
TWILIO_CREDENTIALS = {"account_sid": "AC" + "0123456789abcdef" * 2,
                      "auth_token": "5ec7e7a0b1c2d3e4f5a6b7c8d9e0f1a2"}
DLT_TEMPLATE = {"dlt_template_id": "1107161234567890123",
                "body": "Your Acme login code is {#var#}. Valid for {#var#} minutes."}


@dataclass(frozen=True)
class Sending:
    """A tenant with a default SIMULATOR app, ready to send."""

    tenant: TenantHandle
    app_id: str


async def _create_app(client: httpx.AsyncClient, tenant: TenantHandle,
                      **fields: Any) -> str:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers,
                                 json={"name": "Sandbox", "provider": "SIMULATOR", **fields})
    assert response.status_code == 201, response.text
    app_id: str = response.json()["id"]
    return app_id


@pytest.fixture
async def sending(client: httpx.AsyncClient, tenants: TenantFactory) -> Sending:
    tenant = await tenants.create()
    return Sending(tenant, await _create_app(client, tenant, sender_id="Acme"))


async def _send(client: httpx.AsyncClient, tenant: TenantHandle | dict[str, str],
                **body: Any) -> dict[str, Any]:
    headers = tenant.headers if isinstance(tenant, TenantHandle) else tenant
    response = await client.post("/sms/v1/messages/", headers=headers,
                                 json={"phone": US_PHONE, "text": "Hello there", **body})
    assert response.status_code == 201, response.text
    sent: dict[str, Any] = response.json()
    return sent


async def _count_messages(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Message)))
                   .scalar_one())


async def _stored(runtime: Runtime, message_id: str) -> Message:
    async with runtime.sessions() as session:
        return (await session.execute(
            select(Message).where(Message.id == message_id))).scalar_one()


async def _drain(runtime: Runtime) -> Dispatcher:
    """One dispatcher round: claim what is due, send it, record the outcomes."""
    dispatcher = Dispatcher(runtime)
    await dispatcher.claim_and_send()
    while dispatcher._tasks:
        await asyncio.gather(*list(dispatcher._tasks))
    await dispatcher.flush_results()
    return dispatcher


# --- sending -------------------------------------------------------------------------------------


async def test_send_answers_201_with_the_queued_message(
        client: httpx.AsyncClient, sending: Sending) -> None:
    response = await client.post("/sms/v1/messages/", headers=sending.tenant.headers,
                                 json={"phone": "+14155550100", "text": "Hello there"})

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"], "direction": "outbound", "state": "queued", "phone": "+14155550100",
        "sender_id": "Acme", "text": "Hello there", "encoding": "GSM-7", "segments": 1,
        "priority": 0, "sms_app_id": sending.app_id, "mode": "live", "client_ref": None,
        "batch_id": None, "dlt_template_id": None, "callback_url": None, "attempts": 0,
        "provider_message_id": None, "error_code": None, "error_detail": None,
        "scheduled_at": None, "expires_at": None, "created_at": "2026-11-24T12:00:00Z",
        "updated_at": "2026-11-24T12:00:00Z", "sent_at": None, "delivered_at": None,
        "read_at": None, "completed_at": None}


async def test_a_send_is_on_disk_when_it_is_answered(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    body = await _send(client, sending.tenant)
    stored = await _stored(runtime, body["id"])
    assert (stored.state, stored.to_number, stored.channel_account_id) == (
        "queued", US_PHONE, sending.app_id)


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("hello world", "GSM-7", 1),
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("héllo wörld", "GSM-7", 1),
    ("héllo wörld 你好", "UCS-2", 1),
    ("你" * 70, "UCS-2", 1),
    ("你" * 71, "UCS-2", 2),
], ids=["short", "160-gsm", "161-gsm", "gsm-accents", "cjk", "70-ucs2", "71-ucs2"])
async def test_send_answers_encoding_and_segments(
        client: httpx.AsyncClient, sending: Sending, text: str, encoding: str,
        segments: int) -> None:
    body = await _send(client, sending.tenant, text=text)
    assert (body["encoding"], body["segments"]) == (encoding, segments)


async def test_ten_segments_are_accepted(
        client: httpx.AsyncClient, sending: Sending) -> None:
    body = await _send(client, sending.tenant, text="a" * (153 * 10))
    assert body["segments"] == 10


async def test_send_alias_answers_the_message_plus_success_and_message_id(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    response = await client.post("/sms/v1/messages/send/", headers=sending.tenant.headers,
                                 json={"phone": US_PHONE, "text": "a" * 161})

    assert response.status_code == 201
    body = response.json()
    assert (body["success"], body["message_id"], body["segments"]) == (True, body["id"], 2)
    assert (body["state"], body["encoding"], body["sms_app_id"]) == (
        "queued", "GSM-7", sending.app_id)
    plain = await _send(client, sending.tenant)
    assert set(body) == set(plain) | {"success", "message_id"}
    assert (await _stored(runtime, body["id"])).segments == 2


async def test_the_default_app_sends_when_none_is_named(
        client: httpx.AsyncClient, sending: Sending) -> None:
    other = await _create_app(client, sending.tenant, name="Other")

    first = await _send(client, sending.tenant)
    await client.put(f"/sms/v1/apps/{other}/", headers=sending.tenant.headers,
                     json={"is_default": True})
    second = await _send(client, sending.tenant)

    assert (first["sms_app_id"], second["sms_app_id"]) == (sending.app_id, other)


async def test_a_send_after_its_app_was_deleted_answers_400(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    other = await _create_app(client, sending.tenant, name="Other")
    await _send(client, sending.tenant, sms_app_id=other)
    await client.delete(f"/sms/v1/apps/{other}/", headers=sending.tenant.headers)

    response = await client.post("/sms/v1/messages/", headers=sending.tenant.headers, json={
        "phone": US_PHONE, "text": "Hello there", "sms_app_id": other})

    assert (response.status_code, response.json()["code"]) == (400, "sms_app_not_found")
    assert await _count_messages(runtime) == 1


async def test_an_app_change_reaches_the_next_send(
        client: httpx.AsyncClient, sending: Sending) -> None:
    await _send(client, sending.tenant)

    await client.put(f"/sms/v1/apps/{sending.app_id}/", headers=sending.tenant.headers,
                     json={"sender_id": "Renamed"})
    body = await _send(client, sending.tenant)

    assert body["sender_id"] == "Renamed"


async def test_a_named_app_sends_with_its_own_sender_id(
        client: httpx.AsyncClient, sending: Sending) -> None:
    other = await _create_app(client, sending.tenant, name="Other", sender_id="Other")
    body = await _send(client, sending.tenant, sms_app_id=other)
    assert (body["sms_app_id"], body["sender_id"]) == (other, "Other")


async def test_optional_fields_are_stored_as_given(
        client: httpx.AsyncClient, sending: Sending) -> None:
    body = await _send(client, sending.tenant, sender_id="Promo", priority=100, ttl=3600,
                       scheduled_at="2026-11-24T13:00:00Z", client_ref="order-1",
                       callback_url="https://hooks.example.com/sms")
    assert {key: body[key] for key in ("sender_id", "priority", "scheduled_at", "expires_at",
                                       "client_ref", "callback_url")} == {
        "sender_id": "Promo", "priority": 100, "scheduled_at": "2026-11-24T13:00:00Z",
        "expires_at": "2026-11-24T14:00:00Z", "client_ref": "order-1",
        "callback_url": "https://hooks.example.com/sms"}


# --- refusals: 400 and nothing stored ------------------------------------------------------------


BAD_SENDS: list[tuple[str, dict[str, Any], str, str]] = [
    # label, body fields over a valid send, expected code, what detail names
    ("invalid-phone", {"phone": "12345"}, "invalid_phone", "phone"),
    ("letters-phone", {"phone": "call me"}, "invalid_phone", "phone"),
    ("empty-text", {"text": ""}, "empty_text", "text"),
    ("blank-text", {"text": "   "}, "empty_text", "text"),
    ("11-segments", {"text": "a" * (153 * 10 + 1)}, "text_too_long", "11 SMS parts"),
    ("unknown-app", {"sms_app_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ"}, "sms_app_not_found",
     "sms_app_id"),
    ("ttl-and-valid-until", {"ttl": 60, "valid_until": "2026-11-25T00:00:00Z"},
     "ttl_and_valid_until", "ttl"),
    ("past-schedule", {"scheduled_at": "2026-11-24T11:59:00Z"}, "scheduled_in_past",
     "scheduled_at"),
    ("priority-high", {"priority": 128}, "invalid", "priority"),
    ("priority-low", {"priority": -129}, "invalid", "priority"),
    ("zero-ttl", {"ttl": 0}, "invalid", "ttl"),
    ("valid-until-past", {"valid_until": "2026-11-24T11:00:00Z"}, "invalid", "valid_until"),
    ("bad-callback", {"callback_url": "ftp://example.com/x"}, "invalid", "callback_url"),
    ("naive-schedule", {"scheduled_at": "2026-11-24T13:00:00"}, "invalid", "scheduled_at"),
    ("nul-in-text", {"text": "Hello\x00there"}, "invalid", "text"),
    ("far-future-ttl", {"scheduled_at": "9999-12-31T23:59:00Z", "ttl": 3600}, "invalid", "ttl"),
]


@pytest.mark.parametrize(("fields", "code", "named"), [case[1:] for case in BAD_SENDS],
                         ids=[case[0] for case in BAD_SENDS])
async def test_a_bad_send_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime, fields: dict[str, Any],
        code: str, named: str) -> None:
    response = await client.post("/sms/v1/messages/", headers=sending.tenant.headers,
                                 json={"phone": US_PHONE, "text": "Hello there", **fields})

    assert response.status_code == 400, response.text
    assert (response.json()["code"], named in response.json()["detail"]) == (code, True)
    assert await _count_messages(runtime) == 0


MALFORMED_BODIES: list[tuple[str, bytes, str, str]] = [
    # label, raw request body, expected code, what detail names
    ("not-json", b'{"phone": "+14155550100", "text": ', "malformed_json", "not valid JSON"),
    ("empty-body", b"", "invalid", "body"),
    ("a-json-list", b'[{"phone": "+14155550100", "text": "hi"}]', "invalid", "body"),
    ("no-phone", b'{"text": "hi"}', "invalid", "phone"),
    ("unknown-field", b'{"phone": "+14155550100", "text": "hi", "to": "x"}', "invalid", "to"),
    ("phone-a-number", b'{"phone": 14155550100, "text": "hi"}', "invalid", "phone"),
]


@pytest.mark.parametrize("path", ["/sms/v1/messages/", "/sms/v1/messages/send/"])
@pytest.mark.parametrize(("raw", "code", "named"), [case[1:] for case in MALFORMED_BODIES],
                         ids=[case[0] for case in MALFORMED_BODIES])
async def test_a_malformed_send_body_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime, path: str, raw: bytes,
        code: str, named: str) -> None:
    response = await client.post(path, content=raw, headers={
        **sending.tenant.headers, "Content-Type": "application/json"})

    assert response.status_code == 400, response.text
    assert (response.json()["code"], named in response.json()["detail"]) == (code, True)
    assert await _count_messages(runtime) == 0


async def test_an_unauthenticated_send_answers_401_before_its_body_is_read(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.post("/sms/v1/messages/", content=b"{not json",
                                 headers={"Content-Type": "application/json"})

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert await _count_messages(runtime) == 0


async def test_the_send_body_is_documented_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    for path in ("/sms/v1/messages/", "/sms/v1/messages/send/"):
        schema = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert {"phone", "text"} <= set(schema["required"]), path
        assert {"sms_app_id", "priority", "client_ref", "ttl"} <= set(schema["properties"])


async def test_another_tenants_app_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, sending: Sending, tenants: TenantFactory,
        runtime: Runtime) -> None:
    intruder = await tenants.create()
    await _create_app(client, intruder)

    response = await client.post("/sms/v1/messages/", headers=intruder.headers, json={
        "phone": US_PHONE, "text": "Hello there", "sms_app_id": sending.app_id})

    assert (response.status_code, response.json()["code"]) == (400, "sms_app_not_found")
    assert await _count_messages(runtime) == 0


async def test_a_tenant_without_an_sms_app_gets_400_no_sms_app(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()

    response = await client.post("/sms/v1/messages/", headers=tenant.headers,
                                 json={"phone": US_PHONE, "text": "Hello there"})

    assert response.status_code == 400
    assert response.json()["code"] == "no_sms_app"
    assert "POST /sms/v1/apps/" in response.json()["detail"]
    assert await _count_messages(runtime) == 0


async def test_a_viewer_cannot_send(
        client: httpx.AsyncClient, sending: Sending, tenants: TenantFactory,
        runtime: Runtime) -> None:
    viewer = await tenants.key(sending.tenant, Role.VIEWER)

    response = await client.post("/sms/v1/messages/", headers=viewer,
                                 json={"phone": US_PHONE, "text": "Hello there"})

    assert response.status_code == 403
    assert await _count_messages(runtime) == 0


async def test_a_repeated_client_ref_answers_409_and_stores_one_message(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    first = await _send(client, sending.tenant, client_ref="order-42")

    again = await client.post("/sms/v1/messages/", headers=sending.tenant.headers, json={
        "phone": "+14155550199", "text": "Different text", "client_ref": "order-42"})

    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_client_ref"
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Message.id, Message.text).where(
            Message.client_ref == "order-42"))).all()
    assert [tuple(row) for row in rows] == [(first["id"], "Hello there")]


async def test_concurrent_sends_with_one_client_ref_store_one_message(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    answers = await asyncio.gather(*(
        client.post("/sms/v1/messages/", headers=sending.tenant.headers, json={
            "phone": US_PHONE, "text": f"attempt {n}", "client_ref": "order-7"})
        for n in range(5)))

    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409, 409]
    assert await _count_messages(runtime) == 1


async def test_another_tenant_may_use_the_same_client_ref(
        client: httpx.AsyncClient, sending: Sending, tenants: TenantFactory) -> None:
    other = await tenants.create()
    await _create_app(client, other)
    await _send(client, sending.tenant, client_ref="order-42")
    await _send(client, other, client_ref="order-42")


# --- DLT (India) ---------------------------------------------------------------------------------


@pytest.fixture
async def dlt_app(client: httpx.AsyncClient, sending: Sending) -> str:
    """A DLT-registered app (entity id, 6-letter header) and one stored template."""
    made = await client.post("/sms/v1/templates/", headers=sending.tenant.headers,
                             json=DLT_TEMPLATE)
    assert made.status_code == 201, made.text
    return await _create_app(client, sending.tenant, name="India", sender_id="ACMEIN",
                             dlt_entity_id="1101456789012345678")


DLT_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("no-template-id", {}, "needs dlt_template_id"),
    ("unknown-template", {"dlt_template_id": "1107999999999999999"},
     "unknown DLT template '1107999999999999999'"),
    ("text-mismatch", {"dlt_template_id": DLT_TEMPLATE["dlt_template_id"],
                       "text": "Your Acme code is 482913."},
     "does not match DLT template"),
    ("variable-too-long", {"dlt_template_id": DLT_TEMPLATE["dlt_template_id"],
                           "text": f"Your Acme login code is {'9' * 31}. Valid for 10 minutes."},
     "does not match DLT template"),
    ("sender-not-6", {"dlt_template_id": DLT_TEMPLATE["dlt_template_id"],
                      "sender_id": "ACME"}, "sender id must be the 6-letter or 6-digit header"),
]


@pytest.mark.parametrize(("fields", "reason"), [case[1:] for case in DLT_REFUSALS],
                         ids=[case[0] for case in DLT_REFUSALS])
async def test_a_dlt_mismatch_answers_400_with_the_reason_and_stores_nothing(
        client: httpx.AsyncClient, sending: Sending, dlt_app: str, runtime: Runtime,
        fields: dict[str, Any], reason: str) -> None:
    response = await client.post("/sms/v1/messages/", headers=sending.tenant.headers, json={
        "phone": IN_PHONE, "sms_app_id": dlt_app,
        "text": "Your Acme login code is 482913. Valid for 10 minutes.", **fields})

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "dlt_mismatch"
    assert body["errors"][0]["field"] == "dlt_template_id"
    assert reason in body["detail"]
    assert await _count_messages(runtime) == 0


async def test_a_matching_dlt_send_is_accepted_with_its_template_id(
        client: httpx.AsyncClient, sending: Sending, dlt_app: str, runtime: Runtime) -> None:
    body = await _send(client, sending.tenant, phone=IN_PHONE, sms_app_id=dlt_app,
                       dlt_template_id="1107161234567890123",
                       text="Your Acme login code is 482913. Valid for 10 minutes.")

    assert (body["dlt_template_id"], body["sender_id"]) == ("1107161234567890123", "ACMEIN")
    stored = await _stored(runtime, body["id"])
    assert (stored.dlt_template_id, stored.dlt_entity_id, stored.dlt_variables) == (
        "1107161234567890123", "1101456789012345678", ["482913", "10"])


async def test_a_template_stored_after_a_refused_send_is_used_by_the_next_send(
        client: httpx.AsyncClient, sending: Sending, dlt_app: str) -> None:
    send = {"phone": IN_PHONE, "sms_app_id": dlt_app, "dlt_template_id": "1107000000000000077",
            "text": "Order 5531 shipped"}
    refused = await client.post("/sms/v1/messages/", headers=sending.tenant.headers, json=send)
    assert refused.json()["code"] == "dlt_mismatch"
    await client.post("/sms/v1/templates/", headers=sending.tenant.headers, json={
        "dlt_template_id": "1107000000000000077", "body": "Order {#var#} shipped"})

    accepted = await client.post("/sms/v1/messages/", headers=sending.tenant.headers, json=send)

    assert accepted.status_code == 201, accepted.text


async def test_an_indian_number_through_an_app_without_dlt_needs_no_template(
        client: httpx.AsyncClient, sending: Sending) -> None:
    body = await _send(client, sending.tenant, phone=IN_PHONE, text="Free text")
    assert body["dlt_template_id"] is None


async def test_a_non_indian_number_through_a_dlt_app_needs_no_template(
        client: httpx.AsyncClient, sending: Sending, dlt_app: str) -> None:
    body = await _send(client, sending.tenant, sms_app_id=dlt_app, text="Free text")
    assert (body["phone"], body["dlt_template_id"]) == (US_PHONE, None)


async def test_a_dlt_only_provider_refuses_a_non_indian_number(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    app = await _create_app(client, sending.tenant, name="MSG91", provider="MSG91",
                            sender_id="ACMEIN", dlt_entity_id="1101456789012345678",
                            provider_credentials={"auth_key": "Msg91SecretAuthKey0001"})

    response = await client.post("/sms/v1/messages/", headers=sending.tenant.headers, json={
        "phone": US_PHONE, "text": "Hello there", "sms_app_id": app})

    assert (response.status_code, response.json()["code"]) == (400, "unsupported_destination")
    assert await _count_messages(runtime) == 0


# --- the wallet ----------------------------------------------------------------------------------


async def _balance(client: httpx.AsyncClient, tenant: TenantHandle) -> int:
    wallet = (await client.get("/tenants/host-wallet/", headers=tenant.headers)).json()
    balance: int = wallet["balance_minor"]
    return balance


async def test_a_priced_app_debits_the_wallet_per_segment(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    app = await _create_app(client, tenant, price_per_segment_minor=7)
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=100,
                            reason="top-up", now=clock())
        await session.commit()

    body = await _send(client, tenant, sms_app_id=app, text="a" * 161)

    assert body["segments"] == 2
    assert await _balance(client, tenant) == 100 - 14
    assert (await _stored(runtime, body["id"])).price_minor == 14


async def test_an_empty_wallet_answers_402_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    await _create_app(client, tenant, price_per_segment_minor=7)

    response = await client.post("/sms/v1/messages/", headers=tenant.headers,
                                 json={"phone": US_PHONE, "text": "Hello there"})

    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_balance"
    assert await _count_messages(runtime) == 0
    assert await _balance(client, tenant) == 0


async def test_a_wallet_short_of_the_price_answers_402_and_keeps_its_balance(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    await _create_app(client, tenant, price_per_segment_minor=7)
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=10,
                            reason="top-up", now=clock())
        await session.commit()

    response = await client.post("/sms/v1/messages/", headers=tenant.headers,
                                 json={"phone": US_PHONE, "text": "a" * 161})

    assert response.status_code == 402
    assert await _count_messages(runtime) == 0
    assert await _balance(client, tenant) == 10


async def test_concurrent_sends_never_overdraw_the_wallet(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    await _create_app(client, tenant, price_per_segment_minor=7)
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=20,
                            reason="top-up", now=clock())
        await session.commit()

    answers = await asyncio.gather(*(
        client.post("/sms/v1/messages/", headers=tenant.headers,
                    json={"phone": US_PHONE, "text": f"message {n}"}) for n in range(5)))

    assert sorted(answer.status_code for answer in answers) == [201, 201, 402, 402, 402]
    assert await _count_messages(runtime) == 2
    assert await _balance(client, tenant) == 20 - 2 * 7


async def test_test_mode_sends_through_a_priced_app_are_free(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    await _create_app(client, tenant, price_per_segment_minor=7)
    test_key = await tenants.key(tenant, Role.OWNER, KeyMode.TEST)

    body = await _send(client, test_key)

    assert body["mode"] == "test"
    assert await _balance(client, tenant) == 0


# --- test mode -----------------------------------------------------------------------------------


@pytest.fixture
async def recorded_http(runtime: Runtime) -> AsyncIterator[list[httpx.Request]]:
    """Every HTTP request the pipeline makes, answered 500 (none is expected)."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    original = runtime.http
    runtime.http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    try:
        yield requests
    finally:
        await runtime.http.aclose()
        runtime.http = original


async def test_a_test_mode_send_through_twilio_goes_to_the_simulator_without_a_request(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        recorded_http: list[httpx.Request]) -> None:
    tenant = await tenants.create()
    app = await _create_app(client, tenant, name="Twilio", provider="TWILIO",
                            sender_id="+15005550006", provider_credentials=TWILIO_CREDENTIALS)
    test_key = await tenants.key(tenant, Role.DEVELOPER, KeyMode.TEST)

    body = await _send(client, test_key, sms_app_id=app)
    assert (body["mode"], body["sms_app_id"]) == ("test", app)

    await _drain(runtime)

    stored = await _stored(runtime, body["id"])
    assert (stored.state, stored.mode) == ("sent", "test")
    assert stored.provider_message_id == f"sim-{body['id']}"
    assert recorded_http == []


# --- listing -------------------------------------------------------------------------------------


async def _list(client: httpx.AsyncClient, tenant: TenantHandle,
                **params: Any) -> dict[str, Any]:
    response = await client.get("/sms/v1/messages/", headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["results"]}


async def test_list_shows_the_tenants_messages_newest_first(
        client: httpx.AsyncClient, sending: Sending) -> None:
    sent = [await _send(client, sending.tenant, text=f"n{n}") for n in range(3)]

    page = await _list(client, sending.tenant)

    assert page["count"] == 3
    assert page["results"][0]["id"] == max(m["id"] for m in sent)
    assert page["results"] == sorted(page["results"], key=lambda m: m["id"], reverse=True)
    assert page["results"][0] == next(m for m in sent if m["id"] == page["results"][0]["id"])


async def test_list_filters_by_state(
        client: httpx.AsyncClient, sending: Sending) -> None:
    keep = await _send(client, sending.tenant)
    cancelled = await _send(client, sending.tenant)
    await client.post(f"/sms/v1/messages/{cancelled['id']}/cancel/",
                      headers=sending.tenant.headers)

    assert _ids(await _list(client, sending.tenant, state="cancelled")) == {cancelled["id"]}
    assert _ids(await _list(client, sending.tenant, state="queued")) == {keep["id"]}


async def test_list_refuses_an_unknown_state(
        client: httpx.AsyncClient, sending: Sending) -> None:
    response = await client.get("/sms/v1/messages/", headers=sending.tenant.headers,
                                params={"state": "lost"})
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "state")


@pytest.mark.parametrize("name", ["created_after", "created_before"])
async def test_list_refuses_a_time_without_a_timezone(
        client: httpx.AsyncClient, sending: Sending, name: str) -> None:
    response = await client.get("/sms/v1/messages/", headers=sending.tenant.headers,
                                params={name: "2026-11-24T12:00:00"})
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, name)


async def test_list_filters_by_phone(
        client: httpx.AsyncClient, sending: Sending) -> None:
    wanted = await _send(client, sending.tenant, phone="+14155550111")
    await _send(client, sending.tenant, phone="+14155550122")

    page = await _list(client, sending.tenant, phone="+14155550111")

    assert _ids(page) == {wanted["id"]}


async def test_list_filters_by_sms_app_id(
        client: httpx.AsyncClient, sending: Sending) -> None:
    other = await _create_app(client, sending.tenant, name="Other")
    await _send(client, sending.tenant)
    through_other = await _send(client, sending.tenant, sms_app_id=other)

    assert _ids(await _list(client, sending.tenant, sms_app_id=other)) == {through_other["id"]}


async def test_list_filters_by_direction(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime, clock: FakeClock) -> None:
    outbound = await _send(client, sending.tenant)
    async with runtime.sessions() as session:
        app = await get_sms_app(session, sending.tenant.tenant_id, sending.app_id)
        await store_inbound(session, app, InboundMessage(
            provider_message_id="SMinbound1", from_number="+14155550177",
            to_number="+15005550006", text="STOP"), clock())
        await session.commit()

    inbound = await _list(client, sending.tenant, direction="inbound")

    assert [(m["direction"], m["state"], m["text"], m["sender_id"]) for m in
            inbound["results"]] == [("inbound", "received", "STOP", "+14155550177")]
    assert _ids(await _list(client, sending.tenant, direction="outbound")) == {outbound["id"]}


async def test_list_filters_by_creation_time(
        client: httpx.AsyncClient, sending: Sending, clock: FakeClock) -> None:
    early = await _send(client, sending.tenant)  # 12:00:00
    clock.advance(60)
    middle = await _send(client, sending.tenant)  # 12:01:00
    clock.advance(60)
    late = await _send(client, sending.tenant)  # 12:02:00

    after = await _list(client, sending.tenant, created_after="2026-11-24T12:01:00Z")
    before = await _list(client, sending.tenant, created_before="2026-11-24T12:01:00Z")
    between = await _list(client, sending.tenant, created_after="2026-11-24T12:00:30Z",
                          created_before="2026-11-24T12:01:30+00:00")

    assert _ids(after) == {middle["id"], late["id"]}
    assert _ids(before) == {early["id"]}
    assert _ids(between) == {middle["id"]}


async def test_list_filters_by_batch_id(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    in_batch = await _send(client, sending.tenant)
    await _send(client, sending.tenant)
    async with runtime.sessions() as session:
        await session.execute(update(Message).where(Message.id == in_batch["id"])
                              .values(batch_id="01JBATCH00000000000000000A"))
        await session.commit()

    page = await _list(client, sending.tenant, batch_id="01JBATCH00000000000000000A")

    assert [(m["id"], m["batch_id"]) for m in page["results"]] == [
        (in_batch["id"], "01JBATCH00000000000000000A")]


async def test_list_pages_with_limit_and_offset(
        client: httpx.AsyncClient, sending: Sending) -> None:
    sent = {(await _send(client, sending.tenant, text=f"n{n}"))["id"] for n in range(5)}

    first = await _list(client, sending.tenant, limit=2)
    second = await _list(client, sending.tenant, limit=2, offset=2)
    third = await _list(client, sending.tenant, limit=2, offset=4)

    assert [page["count"] for page in (first, second, third)] == [5, 5, 5]
    assert [len(page["results"]) for page in (first, second, third)] == [2, 2, 1]
    assert _ids(first) | _ids(second) | _ids(third) == sent
    assert (first["previous"], third["next"]) == (None, None)
    assert first["next"] == "http://testserver/sms/v1/messages/?limit=2&offset=2"
    assert second["previous"] == "http://testserver/sms/v1/messages/?limit=2&offset=0"


async def test_list_shows_nothing_of_another_tenant(
        client: httpx.AsyncClient, sending: Sending, tenants: TenantFactory) -> None:
    await _send(client, sending.tenant)
    other = await tenants.create()
    assert (await _list(client, other))["results"] == []
    assert (await _list(client, other, sms_app_id=sending.app_id))["count"] == 0


# --- one message ---------------------------------------------------------------------------------


async def test_get_answers_the_message_with_its_history(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime, clock: FakeClock) -> None:
    sent = await _send(client, sending.tenant)
    clock.advance(2)
    await _drain(runtime)

    response = await client.get(f"/sms/v1/messages/{sent['id']}/",
                                headers=sending.tenant.headers)

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["attempts"], body["sent_at"]) == (
        "sent", 1, "2026-11-24T12:00:02Z")
    assert body["events"] == [
        {"at": "2026-11-24T12:00:00Z", "kind": "accepted", "state_from": None,
         "state_to": "queued", "detail": {}},
        {"at": "2026-11-24T12:00:02Z", "kind": "attempt", "state_from": "sending",
         "state_to": "sent", "detail": {"attempt": 1, "sms_app_id": sending.app_id,
                                        "provider": "SIMULATOR", "outcome": "accepted",
                                        "provider_ids": [f"sim-{sent['id']}"],
                                        "response": {"simulated": True}}}]


@pytest.mark.parametrize("path", ["/sms/v1/messages/{id}/", "/sms/v1/messages/{id}/cancel/"])
async def test_another_tenants_message_answers_404(
        client: httpx.AsyncClient, sending: Sending, tenants: TenantFactory,
        runtime: Runtime, path: str) -> None:
    sent = await _send(client, sending.tenant)
    intruder = await tenants.create()

    method = "POST" if path.endswith("cancel/") else "GET"
    response = await client.request(method, path.format(id=sent["id"]),
                                    headers=intruder.headers)

    assert (response.status_code, response.json()["code"]) == (404, "message_not_found")
    assert (await _stored(runtime, sent["id"])).state == "queued"


# --- cancel --------------------------------------------------------------------------------------


async def test_cancel_while_queued_answers_the_cancelled_message(
        client: httpx.AsyncClient, sending: Sending, clock: FakeClock) -> None:
    sent = await _send(client, sending.tenant)
    clock.advance(5)

    response = await client.post(f"/sms/v1/messages/{sent['id']}/cancel/",
                                 headers=sending.tenant.headers)

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["completed_at"]) == ("cancelled", "2026-11-24T12:00:05Z")
    history = (await client.get(f"/sms/v1/messages/{sent['id']}/",
                                headers=sending.tenant.headers)).json()["events"]
    assert [(e["kind"], e["state_from"], e["state_to"]) for e in history] == [
        ("accepted", None, "queued"), ("state", "queued", "cancelled")]


async def test_a_cancelled_message_is_never_sent(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    sent = await _send(client, sending.tenant)
    await client.post(f"/sms/v1/messages/{sent['id']}/cancel/", headers=sending.tenant.headers)

    dispatcher = await _drain(runtime)

    assert dispatcher.stats.claimed == 0
    stored = await _stored(runtime, sent["id"])
    assert (stored.state, stored.attempts, stored.provider_message_id) == ("cancelled", 0, None)


async def test_cancel_after_sending_answers_409(
        client: httpx.AsyncClient, sending: Sending, runtime: Runtime) -> None:
    sent = await _send(client, sending.tenant)
    await _drain(runtime)

    response = await client.post(f"/sms/v1/messages/{sent['id']}/cancel/",
                                 headers=sending.tenant.headers)

    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"
    assert "is sent" in response.json()["detail"]
    assert (await _stored(runtime, sent["id"])).state == "sent"


async def test_cancel_twice_answers_409(
        client: httpx.AsyncClient, sending: Sending) -> None:
    sent = await _send(client, sending.tenant)
    path = f"/sms/v1/messages/{sent['id']}/cancel/"
    await client.post(path, headers=sending.tenant.headers)

    again = await client.post(path, headers=sending.tenant.headers)

    assert (again.status_code, again.json()["code"]) == (409, "not_cancellable")
