"""``/sms/v1/broadcast/``: one text to a list of phones, a contact segment or a CSV upload.

A broadcast answers 202 once every accepted message is stored; recipients that cannot be sent to
are counted as rejected rows, and only a request that is bad as a whole (or leaves nobody to send
to) answers 400 and stores nothing. Counters are read live from the messages, so they move as the
dispatcher (driven by hand here) sends them and the simulator reports them delivered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tidings.db.models import Batch, Message
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.pipeline.dispatcher import Dispatcher
from tidings.runtime import Runtime
from tidings.services import broadcasts
from tidings.services.sms_upkeep import deliver_simulator_reports
from tidings.services.wallet import credit_wallet

PHONES = ["+14155550100", "+14155550101", "+14155550102"]
IN_PHONE = "+919876543210"
DLT_TEMPLATE = {"dlt_template_id": "1107161234567890123",
                "body": "Dear {#var#}, your Acme order has shipped."}


async def _create_app(client: httpx.AsyncClient, tenant: TenantHandle, **fields: Any) -> str:
    response = await client.post("/sms/v1/apps/", headers=tenant.headers, json={
        "name": "Sandbox", "provider": "SIMULATOR", "sender_id": "Acme",
        "provider_config": {"delay_ms": 1000}, **fields})
    assert response.status_code == 201, response.text
    app_id: str = response.json()["id"]
    return app_id


async def _broadcast(client: httpx.AsyncClient, tenant: TenantHandle | dict[str, str],
                     **body: Any) -> dict[str, Any]:
    headers = tenant.headers if isinstance(tenant, TenantHandle) else tenant
    response = await client.post("/sms/v1/broadcast/", headers=headers, json=body)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _messages(runtime: Runtime, batch_id: str | None = None) -> list[Message]:
    """The stored messages (of one batch), by phone."""
    query = select(Message).order_by(Message.to_number)
    if batch_id is not None:
        query = query.where(Message.batch_id == batch_id)
    async with runtime.sessions() as session:
        return list((await session.execute(query)).scalars())


async def _stored_counts(runtime: Runtime) -> tuple[int, int]:
    """How many messages and batches are stored."""
    async with runtime.sessions() as session:
        messages = (await session.execute(select(func.count()).select_from(Message))).scalar()
        batches = (await session.execute(select(func.count()).select_from(Batch))).scalar()
    return int(messages or 0), int(batches or 0)


async def _drain(runtime: Runtime) -> None:
    """One dispatcher round: claim, send everything claimed, record the outcomes."""
    dispatcher = Dispatcher(runtime)
    await dispatcher.claim_and_send()
    await asyncio.gather(*dispatcher._tasks)
    await dispatcher.flush_results()


async def _contact(client: httpx.AsyncClient, tenant: TenantHandle, **fields: Any) -> str:
    response = await client.post("/contacts/", headers=tenant.headers, json=fields)
    assert response.status_code == 201, response.text
    contact_id: str = response.json()["id"]
    return contact_id


def _csv_upload(content: str | bytes) -> dict[str, Any]:
    data = content.encode() if isinstance(content, str) else content
    return {"file": ("recipients.csv", data, "text/csv")}


# --- the three sources ---------------------------------------------------------------------------


async def test_a_phone_list_answers_202_and_stores_one_queued_message_per_phone(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)

    response = await client.post("/sms/v1/broadcast/", headers=tenant.headers, json={
        "sms_app_id": app_id, "phones": PHONES, "text": "Flash sale today"})

    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/sms/v1/broadcast/{body['id']}/"
    assert body == {
        "id": body["id"], "sms_app_id": app_id, "status": "queued", "total": 3,
        "accepted": 3, "duplicates": 0, "rejected": 0, "queued": 3, "sending": 0, "sent": 0,
        "delivered": 0, "read": 0, "failed": 0, "expired": 0, "cancelled": 0,
        "rejected_rows": [], "rejected_truncated": False, "created_at": "2026-11-24T12:00:00Z"}
    stored = await _messages(runtime, body["id"])
    assert [(m.to_number, m.text, m.state, m.from_number, m.mode) for m in stored] == [
        (phone, "Flash sale today", "queued", "Acme", "live") for phone in PHONES]


async def test_a_segment_fills_each_contacts_fields_into_the_text(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    await _contact(client, tenant, phone=PHONES[0], name="Asha", segments=["vip"],
                   attributes={"plan": "Gold"})
    await _contact(client, tenant, phone=PHONES[1], name="Ben", segments=["vip", "uk"],
                   attributes={"plan": "Silver"})
    await _contact(client, tenant, phone=PHONES[2], name="Cleo", segments=["uk"])

    body = await _broadcast(client, tenant, sms_app_id=app_id, segment="vip",
                            text="Hi {{name}}, your {{ PLAN }} perks await at {{phone}}")

    assert (body["total"], body["accepted"], body["rejected"]) == (2, 2, 0)
    assert [m.text for m in await _messages(runtime, body["id"])] == [
        f"Hi Asha, your Gold perks await at {PHONES[0]}",
        f"Hi Ben, your Silver perks await at {PHONES[1]}"]


async def test_a_csv_upload_fills_each_rows_columns_into_the_text(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    csv_text = ("Phone,Name,Order\r\n"
                f"{PHONES[0]},Asha,A-1\r\n"
                "\r\n"
                "(415) 555-0101,Ben,B-2\r\n")

    response = await client.post(
        "/sms/v1/broadcast/", headers=tenant.headers, files=_csv_upload(csv_text),
        data={"sms_app_id": app_id, "text": "{{name}}: order {{order}} ships today",
              "priority": "5"})

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["total"], body["accepted"], body["rejected"]) == (2, 2, 0)
    stored = await _messages(runtime, body["id"])
    assert [(m.to_number, m.text, m.priority) for m in stored] == [
        (PHONES[0], "Asha: order A-1 ships today", 5),
        (PHONES[1], "Ben: order B-2 ships today", 5)]


async def test_a_phone_list_fills_fields_from_the_stored_contact_with_that_phone(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    await _contact(client, tenant, phone=PHONES[0], name="Asha")

    body = await _broadcast(client, tenant, sms_app_id=app_id, phones=PHONES[:2],
                            text="Hi {{name|there}}!")

    assert [m.text for m in await _messages(runtime, body["id"])] == ["Hi Asha!", "Hi there!"]


# --- rejected rows and duplicates ----------------------------------------------------------------


async def test_bad_recipients_are_rejected_rows_and_the_others_are_sent(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    csv_text = ("phone,name\n"
                f"{PHONES[0]},Asha\n"
                "12,Bob\n"
                f"{PHONES[1]},\n"
                f"{PHONES[2]},Cleo,extra\n")

    response = await client.post("/sms/v1/broadcast/", headers=tenant.headers,
                                 files=_csv_upload(csv_text),
                                 data={"sms_app_id": app_id, "text": "Hi {{name}}"})

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["total"], body["accepted"], body["rejected"]) == (4, 1, 3)
    assert body["rejected_rows"] == [
        {"row": 2, "contact_id": None, "phone": "12", "code": "invalid_phone",
         "reason": "phone: not a valid phone number"},
        {"row": 3, "contact_id": None, "phone": PHONES[1], "code": "missing_field",
         "reason": "text: no value for {{name}}"},
        {"row": 4, "contact_id": None, "phone": PHONES[2], "code": "invalid_row",
         "reason": "expected 2 columns, found 3"}]
    assert [m.to_number for m in await _messages(runtime)] == [PHONES[0]]
    shown = (await client.get(f"/sms/v1/broadcast/{body['id']}/", headers=tenant.headers)).json()
    assert (shown["rejected"], shown["rejected_rows"]) == (3, body["rejected_rows"])


async def test_a_phone_listed_twice_in_any_format_is_sent_once(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)

    body = await _broadcast(client, tenant, sms_app_id=app_id, text="Once only", phones=[
        PHONES[0], "(415) 555-0100", PHONES[1], PHONES[0]])

    assert (body["total"], body["accepted"], body["duplicates"], body["rejected"]) == (4, 2, 2, 0)
    assert [m.to_number for m in await _messages(runtime)] == PHONES[:2]


async def test_a_dlt_broadcast_checks_each_filled_text_against_the_template(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create(region="IN")
    made = await client.post("/sms/v1/templates/", headers=tenant.headers, json=DLT_TEMPLATE)
    assert made.status_code == 201, made.text
    app_id = await _create_app(client, tenant, sender_id="ACMEIN",
                               dlt_entity_id="1101456789012345678")
    csv_text = ("phone,name\n"
                f"{IN_PHONE},Asha\n"
                "9876543211,A very long name indeed that is over thirty\n")

    response = await client.post(
        "/sms/v1/broadcast/", headers=tenant.headers, files=_csv_upload(csv_text),
        data={"sms_app_id": app_id, "dlt_template_id": DLT_TEMPLATE["dlt_template_id"],
              "text": "Dear {{name}}, your Acme order has shipped."})

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    rejected = body["rejected_rows"][0]
    assert (rejected["row"], rejected["code"]) == (2, "dlt_mismatch")
    assert "does not match DLT template" in rejected["reason"]
    [stored] = await _messages(runtime, body["id"])
    assert (stored.to_number, stored.dlt_template_id, stored.dlt_variables) == (
        IN_PHONE, DLT_TEMPLATE["dlt_template_id"], ["Asha"])


# --- refusals: 400 and nothing stored ------------------------------------------------------------

REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown-app", {"sms_app_id": "01JUNKNOWN0000000000000000", "phones": PHONES},
     "sms_app_not_found"),
    ("no-source", {}, "invalid_source"),
    ("two-sources", {"phones": PHONES, "segment": "vip"}, "invalid_source"),
    ("empty-text", {"phones": PHONES, "text": "  "}, "empty_text"),
    ("ttl-and-valid-until", {"phones": PHONES, "ttl": 60,
                             "valid_until": "2026-11-25T00:00:00Z"}, "ttl_and_valid_until"),
    ("scheduled-in-past", {"phones": PHONES, "scheduled_at": "2026-11-24T11:00:00Z"},
     "scheduled_in_past"),
    ("text-too-long", {"phones": PHONES, "text": "x" * 1531}, "text_too_long"),
    ("no-phones", {"phones": []}, "no_recipients"),
    ("every-phone-invalid", {"phones": ["12", "not a number"]}, "no_valid_recipients"),
    ("unknown-segment", {"segment": "nobody"}, "no_recipients"),
    ("phones-not-strings", {"phones": [14155550100]}, "invalid"),
]


@pytest.mark.parametrize(("fields", "code"), [case[1:] for case in REFUSALS],
                         ids=[case[0] for case in REFUSALS])
async def test_a_bad_request_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        fields: dict[str, Any], code: str) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)

    response = await client.post("/sms/v1/broadcast/", headers=tenant.headers, json={
        "sms_app_id": app_id, "text": "Flash sale today", **fields})

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert await _stored_counts(runtime) == (0, 0)


CSV_REFUSALS: list[tuple[str, bytes, str, str]] = [
    ("no-phone-column", b"name\nAsha\n", "Hi", "invalid_csv"),
    ("empty-file", b"", "Hi", "invalid_csv"),
    ("header-only", b"phone,name\n", "Hi", "no_recipients"),
    ("field-without-column", f"phone\n{PHONES[0]}\n".encode(), "Hi {{name}}", "unknown_field"),
    ("not-utf8", f"phone,name\n{PHONES[0]},Ren\xe9\n".encode("latin-1"), "Hi", "invalid_encoding"),
]


@pytest.mark.parametrize(("content", "text", "code"), [case[1:] for case in CSV_REFUSALS],
                         ids=[case[0] for case in CSV_REFUSALS])
async def test_a_bad_csv_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        content: bytes, text: str, code: str) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)

    response = await client.post("/sms/v1/broadcast/", headers=tenant.headers,
                                 files=_csv_upload(content),
                                 data={"sms_app_id": app_id, "text": text})

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert await _stored_counts(runtime) == (0, 0)


async def test_a_file_found_broken_after_chunks_were_stored_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broadcasts, "CHUNK_SIZE", 100)
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    rows = "".join(f"+1415555{n:04d}\n" for n in range(1000))  # more than one read buffer
    content = f"phone\n{rows}".encode() + b"\xff\xfe\n"

    response = await client.post("/sms/v1/broadcast/", headers=tenant.headers,
                                 files=_csv_upload(content),
                                 data={"sms_app_id": app_id, "text": "Hi"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_encoding"
    assert "the first bad byte is after data row" in response.json()["detail"]
    assert await _stored_counts(runtime) == (0, 0)


async def test_a_csv_upload_with_a_segment_too_answers_400(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)

    response = await client.post("/sms/v1/broadcast/", headers=tenant.headers,
                                 files=_csv_upload(f"phone\n{PHONES[0]}\n"),
                                 data={"sms_app_id": app_id, "text": "Hi", "segment": "vip"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_source"
    assert await _stored_counts(runtime) == (0, 0)


# --- reading: counters, lists, isolation ---------------------------------------------------------


async def test_counters_move_as_messages_are_sent_and_delivered(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    made = await _broadcast(client, tenant, sms_app_id=app_id, phones=PHONES, text="Hello")
    url = f"/sms/v1/broadcast/{made['id']}/"

    def counters(body: dict[str, Any]) -> tuple[str, int, int, int, int, int]:
        return (body["status"], body["total"], body["queued"], body["sent"], body["delivered"],
                body["failed"])

    assert counters((await client.get(url, headers=tenant.headers)).json()) == (
        "queued", 3, 3, 0, 0, 0)

    await _drain(runtime)
    assert counters((await client.get(url, headers=tenant.headers)).json()) == (
        "completed", 3, 0, 3, 0, 0)

    clock.advance(1.5)
    async with runtime.sessions() as session:
        assert await deliver_simulator_reports(session, clock()) == 3
        await session.commit()
    assert counters((await client.get(url, headers=tenant.headers)).json()) == (
        "completed", 3, 0, 0, 3, 0)


async def test_the_list_shows_the_tenants_broadcasts_newest_first(
        client: httpx.AsyncClient, tenants: TenantFactory, clock: FakeClock) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    first = await _broadcast(client, tenant, sms_app_id=app_id, phones=PHONES[:1], text="One")
    clock.advance(60)
    second = await _broadcast(client, tenant, sms_app_id=app_id, phones=PHONES, text="Two")

    response = await client.get("/sms/v1/broadcast/?limit=1", headers=tenant.headers)

    assert response.status_code == 200
    page = response.json()
    assert (page["count"], [b["id"] for b in page["results"]]) == (2, [second["id"]])
    assert page["results"][0]["queued"] == 3
    rest = (await client.get(page["next"], headers=tenant.headers)).json()
    assert [b["id"] for b in rest["results"]] == [first["id"]]


async def test_another_tenants_broadcast_answers_404_and_is_not_listed(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    owner, other = await tenants.create(), await tenants.create()
    made = await _broadcast(client, owner, sms_app_id=await _create_app(client, owner),
                            phones=PHONES, text="Mine")

    response = await client.get(f"/sms/v1/broadcast/{made['id']}/", headers=other.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "broadcast_not_found"
    listed = (await client.get("/sms/v1/broadcast/", headers=other.headers)).json()
    assert listed["count"] == 0


async def test_another_tenants_app_answers_400_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    owner, other = await tenants.create(), await tenants.create()
    app_id = await _create_app(client, owner)
    await _create_app(client, other)

    response = await client.post("/sms/v1/broadcast/", headers=other.headers, json={
        "sms_app_id": app_id, "phones": PHONES, "text": "Not yours"})

    assert response.status_code == 400
    assert response.json()["code"] == "sms_app_not_found"
    assert await _stored_counts(runtime) == (0, 0)


async def test_a_viewer_may_read_broadcasts_but_not_create_them(
        client: httpx.AsyncClient, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant)
    made = await _broadcast(client, tenant, sms_app_id=app_id, phones=PHONES, text="Hi")
    viewer = await tenants.key(tenant, Role.VIEWER)

    refused = await client.post("/sms/v1/broadcast/", headers=viewer, json={
        "sms_app_id": app_id, "phones": PHONES, "text": "Hi"})
    shown = await client.get(f"/sms/v1/broadcast/{made['id']}/", headers=viewer)

    assert refused.status_code == 403
    assert shown.status_code == 200


# --- test mode and the wallet --------------------------------------------------------------------


async def test_a_test_mode_key_stores_test_mode_messages(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant, price_per_segment_minor=7)
    test_key = await tenants.key(tenant, Role.OWNER, KeyMode.TEST)

    body = await _broadcast(client, test_key, sms_app_id=app_id, phones=PHONES, text="Hi")

    assert body["accepted"] == 3
    assert {(m.mode, m.price_minor) for m in await _messages(runtime)} == {("test", None)}


async def test_a_priced_app_debits_each_message_and_rejects_what_the_wallet_cannot_pay(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime,
        clock: FakeClock) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant, price_per_segment_minor=7)
    async with runtime.sessions() as session:
        await credit_wallet(session, tenant_id=tenant.tenant_id, amount_minor=15,
                            reason="top-up", now=clock())
        await session.commit()

    body = await _broadcast(client, tenant, sms_app_id=app_id, phones=PHONES, text="Hi")

    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["rejected_rows"] == [{
        "row": 3, "contact_id": None, "phone": PHONES[2], "code": "insufficient_balance",
        "reason": "the wallet balance does not cover this message (7 minor units); top it up"}]
    assert [m.to_number for m in await _messages(runtime)] == PHONES[:2]
    wallet = (await client.get("/tenants/host-wallet/", headers=tenant.headers)).json()
    assert wallet["balance_minor"] == 1


async def test_an_empty_wallet_answers_402_and_stores_nothing(
        client: httpx.AsyncClient, tenants: TenantFactory, runtime: Runtime) -> None:
    tenant = await tenants.create()
    app_id = await _create_app(client, tenant, price_per_segment_minor=7)

    response = await client.post("/sms/v1/broadcast/", headers=tenant.headers, json={
        "sms_app_id": app_id, "phones": PHONES, "text": "Hi"})

    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_balance"
    assert await _stored_counts(runtime) == (0, 0)
