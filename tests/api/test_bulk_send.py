"""``POST /api/v1/sms-providers/{slug}/bulk-send`` and ``GET …/progress``: a CSV of messages
sent through the tenant's app for the slug as one job.

A small job is waited for and answered 200 with its final counters; a large one (or one not done
in time) is answered 202 and followed through ``progress``. Bad files answer 400 and store
nothing; bad rows are listed with their reasons while the good rows are sent. The provider is
Infobip's wire-accurate fake on loopback and the real dispatcher sends, driven here round by
round while the request waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.api.test_outbox import INFOBIP_APP, infobip, install
from tests.conftest import FakeClock, TenantFactory, TenantHandle
from tests.fakes.infobip import FakeInfobip
from tests.pipeline.test_dispatcher import one_round
from tidings.db.models import Batch, Message
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Role
from tidings.pipeline.dispatcher import Dispatcher
from tidings.pipeline.http_transport import dispatch_client
from tidings.runtime import Runtime
from tidings.services.bulk_send import HOLD_MAX_ROWS, HOLD_SECONDS

__all__ = ["infobip"]  # fixtures

BULK = "/api/v1/sms-providers/infobip-sms/bulk-send"
PROGRESS = "/api/v1/sms-providers/infobip-sms/progress"
NO_JOB = {"id": None, "status": "none", "total": 0, "sent": 0, "failed": 0, "pending": 0}


@pytest.fixture
async def tenant(client: httpx.AsyncClient, tenants: TenantFactory) -> TenantHandle:
    """A tenant with an Infobip app installed (its ``infobip-sms``)."""
    made = await tenants.create()
    await install(client, made, INFOBIP_APP)
    return made


def upload(content: str | bytes) -> dict[str, Any]:
    data = content.encode() if isinstance(content, str) else content
    return {"file": ("messages.csv", data, "text/csv")}


async def post_while_sending(client: httpx.AsyncClient, runtime: Runtime,
                             headers: dict[str, str], content: str | bytes,
                             clock: FakeClock | None = None) -> httpx.Response:
    """POST the CSV while the dispatcher sends, round by round, until the answer comes (a
    small job's answer waits for its messages). With ``clock``, whenever only retries are
    left, the clock moves past their backoff."""
    request = asyncio.ensure_future(client.post(BULK, headers=headers, files=upload(content)))
    dispatcher = Dispatcher(runtime)
    while not request.done():
        if await one_round(dispatcher) == 0:
            await asyncio.wait({request}, timeout=0.02)
            if clock is not None and await retries_waiting(runtime, clock):
                clock.advance(5)
    return request.result()


async def held(client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
               content: str, clock: FakeClock | None = None) -> dict[str, Any]:
    """The 200 answer to a small job, posted while the dispatcher sends."""
    response = await post_while_sending(client, runtime, tenant.headers, content, clock)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def retries_waiting(runtime: Runtime, clock: FakeClock) -> bool:
    async with runtime.sessions() as session:
        found = await session.execute(select(Message.id).where(
            Message.state == "queued", Message.next_attempt_at > clock()).limit(1))
        return found.first() is not None


async def drain(runtime: Runtime) -> None:
    """Dispatcher rounds until nothing more is claimed."""
    dispatcher = Dispatcher(runtime)
    while await one_round(dispatcher):
        pass


async def progress(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    response = await client.get(PROGRESS, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(runtime: Runtime) -> tuple[int, int]:
    """How many messages and batches are stored."""
    async with runtime.sessions() as session:
        messages = (await session.execute(select(func.count()).select_from(Message))).scalar()
        batches = (await session.execute(select(func.count()).select_from(Batch))).scalar()
    return int(messages or 0), int(batches or 0)


async def job_messages(runtime: Runtime, job_id: str) -> list[Message]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(Message).where(
            Message.batch_id == job_id).order_by(Message.to_number))).scalars())


def taken(fake: FakeInfobip) -> list[tuple[str, str | None, str]]:
    return sorted((send.to, send.sender, send.text) for send in fake.sends)


# --- small jobs: sent while the request waits ---------------------------------------------------

async def test_a_small_file_is_sent_through_the_slugs_app_and_answered_with_final_counts(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    template = await client.get("/api/v1/sms-providers/infobip-sms/template/csv",
                                headers=tenant.headers)
    assert template.text == ("mobile,message,sender,datetime\r\n"
                             "966501234567,Your order is ready,MyBrand,\r\n")

    body = await held(client, runtime, tenant, template.text
                      + "+966501234568,Your order has shipped,,\r\n"
                      + "00966501234569,Your order was delivered,MyBrand,\r\n")

    assert body == {"id": body["id"], "total": 3, "sent": 3, "failed": 0, "errors": [],
                    "warnings": [], "elapsed_ms": 0}
    assert taken(infobip) == [("966501234567", "MyBrand", "Your order is ready"),
                              ("966501234568", "InfoSMS", "Your order has shipped"),
                              ("966501234569", "MyBrand", "Your order was delivered")]
    assert await progress(client, tenant) == {"id": body["id"], "status": "completed",
                                              "total": 3, "sent": 3, "failed": 0, "pending": 0}


async def test_each_row_is_an_ordinary_message_of_the_job(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    csv = "mobile,message\n966501234567,Your order is ready\n"

    job_id = (await held(client, runtime, tenant, csv))["id"]

    listed = (await client.get("/sms/v1/messages/", headers=tenant.headers,
                               params={"batch_id": job_id})).json()["results"]
    assert [(m["phone"], m["text"], m["state"], m["mode"], m["provider_message_id"])
            for m in listed] == [("+966501234567", "Your order is ready", "sent", "live",
                                  infobip.sends[0].message_id)]


async def test_bad_rows_are_listed_with_their_reasons_and_the_good_rows_are_sent(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    csv = ("mobile,message,sender,datetime\n"
           "966501234567,Good one,,\n"
           "12345,Bad number,,\n"
           "966501234568,,,\n"
           f"966501234569,{'x' * 1531},,\n"
           "966501234570,Bad sender,Sender name too long,\n"
           "966501234571,Bad time,,next tuesday\n"
           "966501234572,Too,many,cells,here\n"
           "966501234573,Good two,,\n")

    body = await held(client, runtime, tenant, csv)

    assert (body["total"], body["sent"], body["failed"]) == (8, 2, 6)
    assert body["errors"] == [
        {"row": 2, "mobile": "12345", "message": "mobile: not a valid phone number"},
        {"row": 3, "mobile": "966501234568", "message": "message: must not be empty"},
        {"row": 4, "mobile": "966501234569", "message": "message: is 11 SMS parts long; at "
                                                        "most 10 are allowed "
                                                        "(TIDINGS_SMS_MAX_SEGMENTS)"},
        {"row": 5, "mobile": "966501234570", "message": "sender: must be a number of up to 15 "
                                                        "digits, or 1 to 11 letters, digits, "
                                                        "spaces and . - _ &"},
        {"row": 6, "mobile": "966501234571", "message": "datetime: must be an ISO 8601 date "
                                                        "and time (2026-12-01T09:30:00Z)"},
        {"row": 7, "mobile": "966501234572", "message": "expected 4 columns, found 5"},
    ]
    assert taken(infobip) == [("966501234567", "InfoSMS", "Good one"),
                              ("966501234573", "InfoSMS", "Good two")]


async def test_a_provider_failure_is_counted_and_listed_with_its_row(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    infobip.fail_next(status=401)
    csv = "mobile,message\n966501234567,Your order is ready\n"

    body = await held(client, runtime, tenant, csv)

    assert (body["total"], body["sent"], body["failed"]) == (1, 0, 1)
    assert body["errors"] == [{"row": 1, "mobile": "966501234567", "message": (
        "not sent: GENERAL_ERROR: Something went wrong. Please contact support.")}]


async def test_a_recipient_repeated_in_the_file_gets_one_message_and_a_warning(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    body = await held(client, runtime, tenant, "mobile,message\n"
                                               "966501234567,First\n"
                                               "+966501234567,Second\n"
                                               "00966501234567,Third\n")

    assert (body["total"], body["sent"], body["failed"]) == (3, 1, 0)
    assert body["warnings"] == [
        "row 2: +966501234567 was already taken by row 1; skipped (one message per recipient)",
        "row 3: +966501234567 was already taken by row 1; skipped (one message per recipient)"]
    assert taken(infobip) == [("966501234567", "InfoSMS", "First")]


async def test_an_unknown_column_is_ignored_with_a_warning(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    body = await held(client, runtime, tenant,
                      "\ufeff Message ,MOBILE,Order\n Your order is ready ,966501234567,1042\n")

    assert (body["sent"], body["warnings"]) == (1, [
        "column 'Order' is not used (the columns are mobile, message, sender, datetime)"])
    assert taken(infobip) == [("966501234567", "InfoSMS", "Your order is ready")]


async def test_a_national_number_is_read_in_the_tenants_region(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip) -> None:
    tenant = await tenants.create(region="SA")
    await install(client, tenant, INFOBIP_APP)
    await held(client, runtime, tenant, "mobile,message\n0501234567,Your order is ready\n")

    assert taken(infobip) == [("966501234567", "InfoSMS", "Your order is ready")]


async def test_a_small_job_not_done_within_the_wait_answers_202_with_its_counts_then(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        clock: FakeClock, infobip: FakeInfobip) -> None:
    request = asyncio.ensure_future(client.post(BULK, headers=tenant.headers, files=upload(
        "mobile,message\n966501234567,Your order is ready\n")))
    while (await stored(runtime))[1] == 0:  # the job is stored; no dispatcher runs
        await asyncio.wait({request}, timeout=0.02)

    clock.advance(HOLD_SECONDS)
    response = await request

    body = response.json()
    assert (response.status_code, body) == (202, {
        "id": body["id"], "status": "queued", "total": 1, "sent": 0, "failed": 0,
        "errors": [], "warnings": [], "elapsed_ms": round(HOLD_SECONDS * 1000)})


async def test_a_test_mode_key_sends_test_messages_through_the_simulator(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        tenant: TenantHandle, infobip: FakeInfobip) -> None:
    sandbox = await tenants.key(tenant, Role.DEVELOPER, KeyMode.TEST)

    response = await post_while_sending(client, runtime, sandbox,
                                        "mobile,message\n966501234567,Your order is ready\n")

    assert (response.status_code, response.json()["sent"]) == (200, 1)
    [message] = await job_messages(runtime, response.json()["id"])
    assert (message.mode, message.provider_message_id) == ("test", f"sim-{message.id}")
    assert infobip.sends == []


# --- large jobs: answered at once, followed through progress -----------------------------------

async def test_a_large_file_answers_202_and_progress_reaches_the_final_counts(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    rows = HOLD_MAX_ROWS + 50
    csv = "mobile,message\n" + "".join(f"9665012{n:05d},Your code is {n}\n"
                                       for n in range(rows - 1)) + "not a number,Hi\n"

    response = await client.post(BULK, headers=tenant.headers, files=upload(csv))

    body = response.json()
    assert (response.status_code, body) == (202, {
        "id": body["id"], "status": "queued", "total": rows, "sent": 0, "failed": 1,
        "errors": [{"row": rows, "mobile": "not a number",
                    "message": "mobile: not a valid phone number"}],
        "warnings": [], "elapsed_ms": 0})
    assert await progress(client, tenant) == {"id": body["id"], "status": "queued",
                                              "total": rows, "sent": 0, "failed": 1,
                                              "pending": rows - 1}
    await drain(runtime)
    assert await progress(client, tenant) == {"id": body["id"], "status": "completed",
                                              "total": rows, "sent": rows - 1, "failed": 1,
                                              "pending": 0}
    assert len({send.to for send in infobip.sends}) == len(infobip.sends) == rows - 1


async def test_a_future_datetime_schedules_its_row_and_a_past_one_sends_at_once(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        clock: FakeClock, infobip: FakeInfobip) -> None:
    csv = ("mobile,message,datetime\n"
           "966501234567,Later,2026-11-24T13:00:00\n"
           "966501234568,Now,2026-11-24T11:00:00+00:00\n")

    response = await client.post(BULK, headers=tenant.headers, files=upload(csv))
    await drain(runtime)

    assert (response.status_code, response.json()["status"]) == (202, "queued")
    later, now = await job_messages(runtime, response.json()["id"])
    assert (later.state, later.scheduled_at) == ("queued", datetime(2026, 11, 24, 13, 0,
                                                                    tzinfo=UTC))
    assert (now.state, now.scheduled_at) == ("sent", None)
    clock.advance(3600)
    await drain(runtime)
    assert taken(infobip) == [("966501234567", "InfoSMS", "Later"),
                              ("966501234568", "InfoSMS", "Now")]


# --- faults --------------------------------------------------------------------------------------

async def test_a_provider_timeout_is_retried_and_each_recipient_is_taken_once(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        clock: FakeClock, infobip: FakeInfobip) -> None:
    patient, runtime.http = runtime.http, dispatch_client(0.5)
    infobip.hang_next(count=2, seconds=1.5)
    csv = "mobile,message\n" + "".join(f"96650123456{n},Your code is {n}\n" for n in range(6))
    try:
        body = await held(client, runtime, tenant, csv, clock=clock)
    finally:
        await runtime.http.aclose()
        runtime.http = patient

    assert (body["total"], body["sent"], body["failed"]) == (6, 6, 0)
    assert sorted(send.to for send in infobip.sends) == [f"96650123456{n}" for n in range(6)]
    assert len(infobip.requests) == 8
    attempts = sorted(message.attempts for message in await job_messages(runtime, body["id"]))
    assert attempts == [1, 1, 1, 1, 2, 2]


@pytest.mark.parametrize(("content", "error", "code"), [
    (b"", "file: the file is empty: its first row must name the columns, including mobile "
          "and message", "invalid_csv"),
    (b"mobile,message\r\n", "file: the file has no data rows: add one row per message under "
                            "the header", "invalid_csv"),
    (b"phone,text\n966501234567,Hi\n", "file: the header has no mobile and no message column: "
     "its first row must name the columns mobile, message, sender, datetime (sender and "
     "datetime are optional)", "invalid_csv"),
    (b"966501234567,Hi\n", "file: the header has no mobile and no message column: its first "
     "row must name the columns mobile, message, sender, datetime (sender and datetime are "
     "optional)", "invalid_csv"),
    (b"mobile,message\n966501234567,Caf\xe9 ready\n", "file: not UTF-8 text; save it as CSV "
                                                      "UTF-8", "invalid_encoding"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file: not UTF-8 text; save it as CSV UTF-8",
     "invalid_encoding"),
    (b'mobile,message\n966501234567,"Hi\n966501234568,there\n', "file: data row 1 is not "
     "valid CSV (unexpected end of data); is a quote left open?", "invalid_csv"),
    (b"mobile,message\n966501234567," + b"x" * (1 << 20), "file: a line is longer than "
     "1048576 characters", "invalid_csv"),
], ids=["empty", "header-only", "wrong-header", "no-header", "not-utf8", "binary",
        "open-quote", "long-line"])
async def test_a_bad_file_answers_400_with_an_error_and_stores_nothing(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip, content: bytes, error: str, code: str) -> None:

    response = await client.post(BULK, headers=tenant.headers, files=upload(content))

    assert (response.status_code, response.json()) == (400, {"error": error, "code": code})
    assert await stored(runtime) == (0, 0)


async def test_a_file_without_a_sendable_row_answers_400_with_the_row_errors(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    csv = "mobile,message\n12345,Hi\n966501234567,\n"

    response = await client.post(BULK, headers=tenant.headers, files=upload(csv))

    assert (response.status_code, response.json()) == (400, {
        "error": "none of the 2 rows can be sent; the first: row 1: mobile: not a valid phone "
                 "number; row 2: message: must not be empty",
        "code": "no_valid_rows",
        "errors": [{"row": 1, "mobile": "12345", "message": "mobile: not a valid phone number"},
                   {"row": 2, "mobile": "966501234567",
                    "message": "message: must not be empty"}]})
    assert await stored(runtime) == (0, 0)


async def test_a_request_without_the_file_field_answers_400(
        client: httpx.AsyncClient, tenant: TenantHandle) -> None:

    response = await client.post(BULK, headers=tenant.headers, data={"csv": "mobile,message"})

    assert (response.status_code, response.json()) == (400, {
        "error": "file: send the CSV as the multipart/form-data field file",
        "code": "missing_file"})


async def test_a_50_mb_file_answers_413_with_an_error_and_stores_nothing(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle) -> None:
    row = b"966501234567,Your order is ready\n"
    content = b"mobile,message\n" + row * (50_000_000 // len(row))

    response = await client.post(BULK, headers=tenant.headers, files=upload(content))

    assert (response.status_code, response.json()) == (413, {
        "error": "the file is larger than 20971520 bytes (TIDINGS_BULK_MAX_BYTES): split it "
                 "into smaller files", "code": "payload_too_large"})
    assert await stored(runtime) == (0, 0)


async def test_a_file_sent_without_a_length_is_measured_once_received(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle) -> None:
    runtime.settings.bulk_max_bytes = 1000
    boundary = "bulkboundary"

    async def body() -> AsyncIterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"m.csv\"\r\nContent-Type: text/csv\r\n\r\nmobile,message\n").encode()
        for _ in range(100):
            yield b"966501234567,Your order is ready\n"
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(BULK, content=body(), headers={
        **tenant.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})

    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    assert await stored(runtime) == (0, 0)


# --- who may, and which job --------------------------------------------------------------------

@pytest.mark.parametrize(("slug", "error"), [
    ("nope-sms", "unknown provider slug 'nope-sms'; the slugs are "),
    ("twilio-sms", 'no TWILIO app is installed for this tenant: install one with '
                   'POST /sms/v1/apps/ {"provider": "TWILIO", ...}'),
])
@pytest.mark.parametrize("path", ["bulk-send", "progress"])
async def test_an_unknown_or_uninstalled_slug_answers_400_with_an_error(
        client: httpx.AsyncClient, tenant: TenantHandle, slug: str, error: str,
        path: str) -> None:
    url = f"/api/v1/sms-providers/{slug}/{path}"

    response = (await client.post(url, headers=tenant.headers, files=upload("mobile,message\n"))
                if path == "bulk-send" else await client.get(url, headers=tenant.headers))

    assert response.status_code == 400
    assert response.json()["error"].startswith(error)


async def test_a_viewer_may_follow_progress_but_not_send(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        tenant: TenantHandle) -> None:
    viewer = await tenants.key(tenant, Role.VIEWER)

    sent = await client.post(BULK, headers=viewer, files=upload(
        "mobile,message\n966501234567,Hi\n"))
    followed = await client.get(PROGRESS, headers=viewer)

    assert (sent.status_code, sent.json()) == (403, {
        "error": "role viewer may not messages.send", "code": "permission_denied"})
    assert (followed.status_code, followed.json()) == (200, NO_JOB)
    assert await stored(runtime) == (0, 0)


async def test_progress_without_a_job_says_none(
        client: httpx.AsyncClient, tenant: TenantHandle) -> None:

    assert await progress(client, tenant) == NO_JOB


async def test_progress_shows_the_latest_job(
        client: httpx.AsyncClient, runtime: Runtime, tenant: TenantHandle,
        infobip: FakeInfobip) -> None:
    await held(client, runtime, tenant, "mobile,message\n966501234567,A\n")

    latest = await held(client, runtime, tenant, "mobile,message\n966501234568,B\n966501234569,C\n")

    assert await progress(client, tenant) == {"id": latest["id"], "status": "completed",
                                              "total": 2, "sent": 2, "failed": 0, "pending": 0}


async def test_another_tenants_job_is_never_visible(
        client: httpx.AsyncClient, runtime: Runtime, tenants: TenantFactory,
        infobip: FakeInfobip) -> None:
    owner, other = await tenants.create(), await tenants.create()
    await install(client, owner, INFOBIP_APP)
    await install(client, other, INFOBIP_APP)
    await held(client, runtime, owner, "mobile,message\n966501234567,A\n")

    assert await progress(client, other) == NO_JOB
