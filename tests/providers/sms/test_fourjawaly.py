"""4jawaly: sends, delivery reports, the URL token, balance, sender names and stored models."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import httpx
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.fourjawaly import FakeFourJawaly
from tests.fakes.server import serve_in_thread
from tests.harness.providers import (
    NOW,
    Canned,
    Expected,
    SendCase,
    WebhookCase,
    assert_forgeries_rejected,
    run_send_case,
    run_webhook_case,
)
from tidings.domain.states import MessageState
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Balance,
    OutboundSms,
    ProviderError,
    Reject,
    Retry,
    SmsProvider,
    StatusUpdate,
    UnknownStatus,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import fourjawaly

APP_KEY = "Jw4kQ9zX2mB7nR5t"
APP_SECRET = "s3cr3T-Vb8Nc4Md8Rk1Tz6Hs3Jw5Pg0Ya"
BASIC = base64.b64encode(f"{APP_KEY}:{APP_SECRET}".encode()).decode()
TOKEN = "whk_4jW7pK1qR"
JOB_ID = "4b29af40-d10b-11ef-84d6-0242592ee337"
TEXT = "رمز التحقق 482913"
DLR_URL = f"https://gw.example.test/sms/v1/webhooks/acc_4j/dlr/?token={TOKEN}"

ACCOUNT = AccountContext(
    account_id="acc_4j",
    base_url="https://api-sms.4jawaly.com",
    credentials={"app_key": APP_KEY, "app_secret": APP_SECRET},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound=f"https://gw.example.test/sms/v1/webhooks/acc_4j/inbound/?token={TOKEN}",
    webhook_token=TOKEN,
)
MESSAGE = OutboundSms(
    message_id="msg_01", to="+966501234567", sender_id="ACME", text=TEXT, encoding="UCS-2",
    segments=1, dlt_entity_id=None, dlt_template_id=None, status_callback_url=DLR_URL,
    idempotency_key="idem_01",
)
HEADERS = {"authorization": f"Basic {BASIC}", "content-type": "application/json",
           "accept": "application/json"}
SEND_PATH = "/api/v1/account/area/sms/send"


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def request(**changes: Any) -> Expected:
    """The send request MESSAGE makes, with message-object fields changed."""
    entry = {"text": TEXT, "numbers": ["966501234567"], "sender": "ACME", **changes}
    return Expected("POST", SEND_PATH, headers=HEADERS, json={"messages": [entry]})


def success(**first: Any) -> dict[str, Any]:
    """A recorded 200 answer, its messages[0] changed by ``first``."""
    return {
        "job_id": JOB_ID,
        "messages": [{"inserted_numbers": 1,
                      "message": {"account_id": 16448, "approve_status": 3, "job_id": JOB_ID,
                                  "webhook": None, "text": TEXT, "sender_id": 217302,
                                  "sender_name": "ACME", "encoding": "UCS2", "length": 17,
                                  "per_message": 70, "messages": 1, "send_at": None,
                                  "id": 59041643},
                      "no_package": [], "has_more_iso_code": [], **first}],
        "code": 200, "message": "تمت العملية بنجاح",
    }


SUCCESS = success()
BAD_SENDER = {"code": 400, "message": "اسم المرسل غير موجود او لا تملك صلاحية",
              "not_senders": ["ACME"]}

SEND_CASES = [
    SendCase("sends-one-number-without-plus-and-basic-auth", MESSAGE, ACCOUNT,
             [Canned(200, SUCCESS)], [request()],
             Accepted((JOB_ID, "59041643"), raw=SUCCESS)),
    SendCase("default-sender-from-config", sms(sender_id=None), account(default_sender="ACME"),
             [Canned(200, SUCCESS)], [request()], Accepted((JOB_ID, "59041643"), raw=SUCCESS)),
    SendCase("per-message-webhook-when-configured", MESSAGE, account(per_message_webhook=True),
             [Canned(200, SUCCESS)], [request(webhook=DLR_URL)],
             Accepted((JOB_ID, "59041643"), raw=SUCCESS)),
    SendCase("answer-without-message-record-keeps-job-id", MESSAGE, ACCOUNT,
             [Canned(200, {"job_id": JOB_ID, "messages": [{"inserted_numbers": 1}],
                           "code": 200})], [request()],
             Accepted((JOB_ID,), raw={"job_id": JOB_ID, "messages": [{"inserted_numbers": 1}],
                                      "code": 200})),
    SendCase("no-sender-anywhere-rejected-without-a-request", sms(sender_id=None), ACCOUNT,
             [], [], Reject("sender_required", "4jawaly needs an approved sender name: the "
                                               "message or the config's default_sender must "
                                               "name one")),
    SendCase("non-e164-number-rejected-without-a-request", sms(to="0501234567"), ACCOUNT, [], [],
             Reject("invalid_number", "the recipient must be an E.164 number")),
    SendCase("stored-credentials-invalid", MESSAGE,
             replace(ACCOUNT, credentials={"app_key": APP_KEY}), [], [],
             Reject("invalid_credentials", "app_secret: Field required")),
    SendCase("err-text-at-200-is-a-reject", MESSAGE, ACCOUNT,
             [Canned(200, {"messages": [{"err_text": "Failed."}]})], [request()],
             Reject("err_text", "Failed.")),
    SendCase("number-in-error-numbers-is-a-reject", MESSAGE, ACCOUNT,
             [Canned(200, success(inserted_numbers=0, error_numbers=[
                 {"number": "966501234567", "country": "SA", "error": "رقم غير صحيح"}]))],
             [request()], Reject("error_numbers", "966501234567: رقم غير صحيح")),
    SendCase("no-package-for-the-destination-is-a-reject", MESSAGE, ACCOUNT,
             [Canned(200, success(inserted_numbers=0, no_package=["966501234567"]))],
             [request()], Reject("no_package", "no active 4jawaly package covers 966501234567")),
    SendCase("nothing-inserted-is-a-reject", MESSAGE, ACCOUNT,
             [Canned(200, {"job_id": JOB_ID, "messages": [{"inserted_numbers": 0}]})],
             [request()],
             Reject("not_inserted", '4jawaly inserted no number: {"job_id":"' + JOB_ID
                    + '","messages":[{"inserted_numbers":0}]}')),
    SendCase("unknown-sender-400-keeps-code-and-refused-names", MESSAGE, ACCOUNT,
             [Canned(400, BAD_SENDER)], [request()],
             Reject("400", "اسم المرسل غير موجود او لا تملك صلاحية; not_senders: ACME")),
    SendCase("empty-text-422-validation-messages", sms(text=" "), ACCOUNT,
             [Canned(422, {"messages": [{"text": ["حقل messages.0.text مطلوب."]}]})],
             [request(text=" ")], Reject("http_422", "حقل messages.0.text مطلوب.")),
    SendCase("laravel-401", MESSAGE, ACCOUNT, [Canned(401, {"message": "Unauthenticated."})],
             [request()], Reject("http_401", "Unauthenticated.")),
    SendCase("error-echoing-the-secret-is-redacted", MESSAGE, ACCOUNT,
             [Canned(401, {"code": 401, "message": f"bad token {BASIC} ({APP_SECRET})"})],
             [request()], Reject("401", "bad token [redacted] ([redacted])")),
    SendCase("cloudflare-403-page", MESSAGE, ACCOUNT, [Canned(403, "<html>blocked</html>")],
             [request()], Reject("http_403", "<html>blocked</html>")),
    SendCase("rate-limited-429-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, {"message": "Too Many Attempts."}, {"Retry-After": "30"})],
             [request()], Retry("http_429", '{"message":"Too Many Attempts."}', 30.0)),
    SendCase("server-error-502-retry", MESSAGE, ACCOUNT, [Canned(502, "<html>502</html>")],
             [request()], Retry("http_502", "<html>502</html>")),
    SendCase("timeout-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [request()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection-error-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)],
             [request()], Retry("transport_error", "ConnectError: connection reset by peer")),
    SendCase("200-not-json-is-malformed-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, "<html>ok</html>")], [request()],
             Reject("malformed_response", "HTTP 200 without a job id: <html>ok</html>")),
    SendCase("200-error-code-without-job-id", MESSAGE, ACCOUNT,
             [Canned(200, {"code": 500, "message": "خطأ"})], [request()], Reject("500", "خطأ")),
    SendCase("200-json-without-job-id-is-malformed", MESSAGE, ACCOUNT,
             [Canned(200, {"code": 200, "messages": []})], [request()],
             Reject("malformed_response",
                    'HTTP 200 without a job id: {"code":200,"messages":[]}')),
]


def dlr(value: Any, token: str | None = TOKEN) -> WebhookRequest:
    query = {"token": token} if token is not None else {}
    base = DLR_URL.split("?", 1)[0]
    return WebhookRequest(method="POST", url=base + (f"?{urlencode(query)}" if query else ""),
                          headers={"Content-Type": "application/json"}, query=query,
                          body=json.dumps(value).encode())


def report(*entries: dict[str, Any], job_id: str = JOB_ID) -> dict[str, Any]:
    return {"sms_message": {"id": 2354854, "job_id": job_id, "text": "Test",
                            "encoding": "GSM_7BIT", "sender_name": "ACME",
                            "created_at": "2024-01-31T22:08:36.000000Z"},
            "numbers": list(entries)}


def number(status: Any = 3, **extra: Any) -> dict[str, Any]:
    return {"msg_id": JOB_ID, "number": "966501234567", "country_iso": "SA", "status": status,
            "error_code_string": None, **extra}


WEBHOOK_CASES = [
    WebhookCase("status-3-is-delivered", dlr(report(number())), ACCOUNT,
                [StatusUpdate(JOB_ID, MessageState.DELIVERED, "3")]),
    WebhookCase("status-as-string", dlr(report(number("3"))), ACCOUNT,
                [StatusUpdate(JOB_ID, MessageState.DELIVERED, "3")]),
    WebhookCase("one-event-per-number-in-order",
                dlr(report(number(1), number(3, number="966502222222"))), ACCOUNT,
                [UnknownStatus(JOB_ID, "1"), StatusUpdate(JOB_ID, MessageState.DELIVERED, "3")]),
    WebhookCase("unknown-code-is-recorded-not-guessed",
                dlr(report(number(4, error_code_string="UNDELIV"))), ACCOUNT,
                [UnknownStatus(JOB_ID, "4")]),
    WebhookCase("entry-without-msg-id-uses-the-job-id",
                dlr(report({"number": "966501234567", "status": 3})), ACCOUNT,
                [StatusUpdate(JOB_ID, MessageState.DELIVERED, "3")]),
    WebhookCase("flat-report", dlr(number()), ACCOUNT,
                [StatusUpdate(JOB_ID, MessageState.DELIVERED, "3")]),
    WebhookCase("no-numbers-is-payload-error", dlr({"sms_message": {"job_id": JOB_ID}}),
                ACCOUNT, WebhookPayloadError),
    WebhookCase("no-id-anywhere-is-payload-error",
                dlr({"numbers": [{"number": "966501234567", "status": 3}]}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("no-status-is-payload-error", dlr(report(number(None))), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("entry-not-an-object-is-payload-error",
                dlr({"sms_message": {"job_id": JOB_ID}, "numbers": ["966501234567"]}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("broken-json-is-payload-error",
                replace(dlr({}), body=b"{"), ACCOUNT, WebhookPayloadError),
    WebhookCase("missing-token-is-refused", dlr(report(number()), token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", dlr(report(number()), token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(fourjawaly, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(fourjawaly, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(fourjawaly, case)


def test_no_case_leaks_the_basic_token() -> None:
    for case in SEND_CASES:
        assert BASIC not in repr(case.outcome), case.label


# --- balance and sender names --------------------------------------------------------------------


async def query(call: Any, *answers: httpx.Response | Exception) -> tuple[Any, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    pending = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        result = await call(ACCOUNT, http)
    assert not pending
    return result, seen


async def query_failure(call: Any, answer: httpx.Response | Exception) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await query(call, answer)
    assert APP_SECRET not in str(raised.value)
    assert BASIC not in str(raised.value)
    return raised.value


async def test_balance_is_total_points_of_active_packages_as_written() -> None:
    body = '{"code": 200, "message": "تم", "total_balance": 985, "items": []}'
    result, [sent] = await query(fourjawaly.balance, httpx.Response(200, text=body))
    assert result == Balance("985", None)
    assert (sent.method, sent.url.path) == ("GET", "/api/v1/account/area/me/packages")
    assert dict(sent.url.params) == {"is_active": "1", "order_by": "id", "order_by_type": "desc",
                                     "page": "1", "page_size": "10", "return_collection": "1"}
    assert sent.headers["authorization"] == f"Basic {BASIC}"


async def test_balance_keeps_a_decimal_as_written() -> None:
    result, _ = await query(fourjawaly.balance, httpx.Response(
        200, text='{"code": 200, "total_balance": 12.50}'))
    assert result == Balance("12.50", None)


async def test_balance_error_keeps_4jawaly_code() -> None:
    failure = await query_failure(fourjawaly.balance, httpx.Response(
        400, json={"code": 400, "message": "غير مصرح"}))
    assert failure.failure == Reject("400", "غير مصرح")


async def test_balance_200_with_error_code_is_a_reject() -> None:
    failure = await query_failure(fourjawaly.balance, httpx.Response(
        200, json={"code": 403, "message": "الحساب موقوف"}))
    assert failure.failure == Reject("403", "الحساب موقوف")


async def test_balance_without_total_is_malformed() -> None:
    failure = await query_failure(fourjawaly.balance, httpx.Response(
        200, json={"code": 200, "message": "تم"}))
    assert failure.failure == Reject("malformed_response",
                                     "the packages answer has no total_balance")


async def test_balance_5xx_and_timeout_are_retries() -> None:
    failure = await query_failure(fourjawaly.balance, httpx.Response(503, text="busy"))
    assert failure.failure == Retry("http_503", "busy")
    failure = await query_failure(fourjawaly.balance, httpx.ReadTimeout("read timed out"))
    assert failure.failure == Retry("timeout", "ReadTimeout: read timed out")


def senders_page(names: list[str], page: int, last: int) -> httpx.Response:
    return httpx.Response(200, json={"code": 200, "message": "تم", "items": {
        "current_page": page, "data": [{"id": i, "sender_name": n, "status": 1}
                                       for i, n in enumerate(names)], "last_page": last}})


async def test_sender_names_follow_every_page_of_active_names() -> None:
    names, seen = await query(fourjawaly.sender_names, senders_page(["ACME", "ACME-OTP"], 1, 2),
                              senders_page(["ACME", "Shop"], 2, 2))
    assert names == ["ACME", "ACME-OTP", "Shop"]
    assert [dict(r.url.params) for r in seen] == [
        {"page_size": "100", "page": str(page), "status": "1", "return_collection": "1"}
        for page in (1, 2)]
    assert {r.url.path for r in seen} == {"/api/v1/account/area/senders"}


async def test_sender_names_from_a_plain_list() -> None:
    names, _ = await query(fourjawaly.sender_names, httpx.Response(200, json={
        "code": 200, "items": [{"sender_name": "ACME"}, {"sender_name": ""}, "x"]}))
    assert names == ["ACME"]


async def test_sender_names_without_items_is_malformed() -> None:
    failure = await query_failure(fourjawaly.sender_names, httpx.Response(200, json={
        "code": 200, "message": "تم"}))
    assert failure.failure == Reject("malformed_response", "the senders answer has no items")


async def test_sender_names_unauthenticated_is_a_reject() -> None:
    failure = await query_failure(fourjawaly.sender_names, httpx.Response(
        401, json={"message": "Unauthenticated."}))
    assert failure.failure == Reject("http_401", "Unauthenticated.")


# --- stored models -------------------------------------------------------------------------------


def test_credentials_accept_an_api_token_pair() -> None:
    fourjawaly.Credentials.model_validate({"app_key": APP_KEY, "app_secret": APP_SECRET})


@pytest.mark.parametrize("credentials", [
    pytest.param({"app_key": APP_KEY}, id="no-secret"),
    pytest.param({"app_key": "ab:cdef", "app_secret": APP_SECRET}, id="colon-in-key"),
    pytest.param({"app_key": "abc", "app_secret": APP_SECRET}, id="key-too-short"),
    pytest.param({"app_key": APP_KEY, "app_secret": "with space"}, id="space-in-secret"),
    pytest.param({"app_key": APP_KEY, "app_secret": APP_SECRET, "sender": "ACME"},
                 id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        fourjawaly.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="empty"),
    pytest.param({"default_sender": "ACME"}, id="default-sender"),
    pytest.param({"default_sender": "ACME", "per_message_webhook": True}, id="webhook"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    fourjawaly.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"default_sender": ""}, id="empty-sender"),
    pytest.param({"default_sender": "A" * 17}, id="sender-too-long"),
    pytest.param({"default_sender": "AC\nME"}, id="control-character"),
    pytest.param({"route": "x"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        fourjawaly.Config.model_validate(config)


# --- against the fake, over a real socket --------------------------------------------------------


class Receiver:
    """A webhook endpoint on loopback that records what it is sent, as WebhookRequests."""

    def __init__(self) -> None:
        self.received: list[WebhookRequest] = []
        self.app = Starlette(routes=[Route("/dlr", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        self.received.append(WebhookRequest(
            method=request.method, url=str(request.url), headers=dict(request.headers),
            query=dict(request.query_params), body=await request.body()))
        return JSONResponse({"status": "ok"})


async def test_send_report_balance_and_senders_through_the_fake_over_loopback() -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app) as receiver_url:
        dlr_url = f"{receiver_url}/dlr?token={TOKEN}"
        fake = FakeFourJawaly([(APP_KEY, APP_SECRET)], senders=["ACME", "ACME-OTP"], points=10)
        with serve_in_thread(fake.app) as base_url:
            live = replace(ACCOUNT, base_url=base_url, webhook_url_dlr=dlr_url,
                           config={"per_message_webhook": True})
            async with httpx.AsyncClient() as http:
                outcome = await fourjawaly.send(sms(status_callback_url=dlr_url), live, http,
                                                now=NOW)
                points = await fourjawaly.balance(live, http)
                names = await fourjawaly.sender_names(live, http)
            deadline = time.monotonic() + 10
            while not receiver.received and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    [sent] = fake.sends
    assert isinstance(outcome, Accepted)
    assert outcome.provider_ids == (sent.job_id, str(sent.message_id))
    assert (sent.sender, sent.text, sent.numbers, sent.webhook) == (
        "ACME", TEXT, ("966501234567",), dlr_url)
    assert points == Balance("9", None)
    assert names == ["ACME", "ACME-OTP"]
    [webhook] = receiver.received
    fourjawaly.verify_webhook(webhook, live)
    assert fourjawaly.parse_webhook(webhook, live) == [
        StatusUpdate(sent.job_id, MessageState.DELIVERED, "3")]


async def test_fake_refusals_map_to_rejects() -> None:
    fake = FakeFourJawaly([(APP_KEY, APP_SECRET)], senders=["ACME"], points=0)
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            no_points = await fourjawaly.send(MESSAGE, live, http, now=NOW)
            bad_sender = await fourjawaly.send(sms(sender_id="OTHER"), live, http, now=NOW)
            empty = await fourjawaly.send(sms(text=""), live, http, now=NOW)
            wrong_key = await fourjawaly.send(
                MESSAGE, replace(live, credentials={"app_key": APP_KEY,
                                                    "app_secret": "wrong-secret"}),
                http, now=NOW)
            fake.fail_next(status=503)
            busy = await fourjawaly.send(MESSAGE, live, http, now=NOW)
    assert no_points == Reject("no_package", "no active 4jawaly package covers 966501234567")
    assert bad_sender == Reject("400", "اسم المرسل غير موجود او لا تملك صلاحية; "
                                       "not_senders: OTHER")
    assert empty == Reject("http_422", "حقل messages.0.text مطلوب.")
    assert wrong_key == Reject("http_401", "Unauthenticated.")
    assert busy == Retry("http_503", "<html>Error</html>")
    assert fake.sends == []


_: SmsProvider = fourjawaly
