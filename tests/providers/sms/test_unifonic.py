"""Unifonic: REST sends, delivery reports behind the URL token, no balance or sender listing,
the stored models, and the module against the fake over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import serve_in_thread
from tests.fakes.unifonic import FakeUnifonic
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
    OutboundSms,
    Reject,
    Retry,
    SmsProvider,
    StatusUpdate,
    UnknownStatus,
    Unsupported,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import unifonic

APP_SID = "axuN0U7QlmqV1234goK0mZFgdzG816p"
TOKEN = "whk_Q7rLm2VxT9cB"
DLR_URL = f"https://gw.example.test/sms/v1/webhooks/acc_unifonic/dlr/?token={TOKEN}"
MESSAGE_ID = 42000348806924
KSA = timezone(timedelta(hours=3))

ACCOUNT = AccountContext(
    account_id="acc_unifonic",
    base_url="https://el.cloud.unifonic.com",
    credentials={"app_sid": APP_SID},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound=f"https://gw.example.test/sms/v1/webhooks/acc_unifonic/inbound/"
                        f"?token={TOKEN}",
    webhook_token=TOKEN,
)
MESSAGE = OutboundSms(
    message_id="01JD0Z8Q4W5X6Y7Z8A9B0C1D2E",
    to="+966505980169",
    sender_id="ACME",
    text="Your code is 482913",
    encoding="GSM-7",
    segments=1,
    dlt_entity_id=None,
    dlt_template_id=None,
    status_callback_url=DLR_URL,
    idempotency_key="01JD0Z8Q4W5X6Y7Z8A9B0C1D2E",
)
SUCCESS = {
    "success": True, "message": "", "errorCode": "ER-00",
    "data": {"MessageID": MESSAGE_ID, "CorrelationID": MESSAGE.idempotency_key,
             "Status": "Sent", "NumberOfUnits": 1, "Cost": 0.05, "Balance": 99.95,
             "Recipient": "966505980169", "TimeCreated": "2026-11-24 15:00:00.123",
             "CurrencyCode": "SAR"},
}
ACCEPTED = Accepted((str(MESSAGE_ID),), raw=SUCCESS)


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def post(**changes: str | None) -> Expected:
    """The request MESSAGE makes, with form fields changed (``None`` removes one)."""
    form: dict[str, str | None] = {
        "AppSid": APP_SID,
        "SenderID": "ACME",
        "Recipient": "966505980169",
        "Body": "Your code is 482913",
        "responseType": "JSON",
        "CorrelationID": MESSAGE.idempotency_key,
        "statusCallback": DLR_URL,
    }
    form.update(changes)
    return Expected("POST", "/rest/SMS/messages",
                    headers={"accept": "application/json",
                             "content-type": "application/x-www-form-urlencoded"},
                    form={key: value for key, value in form.items() if value is not None})


def failure(message: str, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "message": message}
    if code is not None:
        body["errorCode"] = code
    return {**body, "data": {}}


SEND_CASES = [
    SendCase("success-message-id-from-data", MESSAGE, ACCOUNT,
             [Canned(200, SUCCESS)], [post()], ACCEPTED),
    SendCase("success-flag-as-string", MESSAGE, ACCOUNT,
             [Canned(200, {**SUCCESS, "success": "true"})], [post()],
             Accepted((str(MESSAGE_ID),), raw={**SUCCESS, "success": "true"})),
    SendCase("success-without-message-id-is-accepted-without-ids", MESSAGE, ACCOUNT,
             [Canned(200, {"success": True, "message": "", "errorCode": "ER-00", "data": {}})],
             [post()], Accepted((), raw={"success": True, "message": "", "errorCode": "ER-00",
                                         "data": {}})),
    SendCase("arabic-text-sent-as-it-is", sms(text="رمز التحقق 482913", encoding="UCS-2"),
             ACCOUNT, [Canned(200, SUCCESS)], [post(Body="رمز التحقق 482913")], ACCEPTED),
    SendCase("sender-from-config-when-the-message-has-none", sms(sender_id=None),
             account(sender_id="UNISMS"), [Canned(200, SUCCESS)], [post(SenderID="UNISMS")],
             ACCEPTED),
    SendCase("message-sender-wins-over-config", MESSAGE, account(sender_id="UNISMS"),
             [Canned(200, SUCCESS)], [post()], ACCEPTED),
    SendCase("no-sender-leaves-the-app-default", sms(sender_id=None), ACCOUNT,
             [Canned(200, SUCCESS)], [post(SenderID=None)], ACCEPTED),
    SendCase("ksa-message-type-from-config", MESSAGE, account(message_type=6),
             [Canned(200, SUCCESS)], [post(MessageType="6")], ACCEPTED),
    SendCase("http-callback-is-left-out", sms(status_callback_url="http://gw.test/dlr?token=t"),
             ACCOUNT, [Canned(200, SUCCESS)], [post(statusCallback=None)], ACCEPTED),
    SendCase("no-callback-url-no-status-callback", sms(status_callback_url=None), ACCOUNT,
             [Canned(200, SUCCESS)], [post(statusCallback=None)], ACCEPTED),
    SendCase("per-message-callback-off", MESSAGE, account(per_message_callback=False),
             [Canned(200, SUCCESS)], [post(statusCallback=None)], ACCEPTED),
    SendCase("non-saudi-number-in-international-form", sms(to="+971507679351"), ACCOUNT,
             [Canned(200, SUCCESS)], [post(Recipient="971507679351")], ACCEPTED),
    SendCase("number-not-e164-rejected-without-a-request", sms(to="0505980169"), ACCOUNT, [],
             [], Reject("invalid_number", "the recipient must be an E.164 number")),
    SendCase("stored-credentials-invalid-rejected", MESSAGE,
             replace(ACCOUNT, credentials={"app_sid": "short"}), [], [],
             Reject("invalid_credentials",
                    "app_sid: String should match pattern '^[A-Za-z0-9_-]{10,100}$'")),
    SendCase("stored-config-invalid-rejected", MESSAGE, account(message_type=4), [], [],
             Reject("invalid_config", "message_type: Input should be 1, 3, 5 or 6")),
    SendCase("er-04-failure-body-at-200", MESSAGE, ACCOUNT,
             [Canned(200, failure("Dest num is too short", "ER-04"))], [post()],
             Reject("ER-04", "Dest num is too short")),
    SendCase("er-01-no-balance-at-200", MESSAGE, ACCOUNT,
             [Canned(200, failure("No rate found or insufficient funds", "ER-01"))], [post()],
             Reject("ER-01", "No rate found or insufficient funds")),
    SendCase("failure-string-flag-without-code-at-200", MESSAGE, ACCOUNT,
             [Canned(200, {"success": "false", "message": "Invalid Sender ID", "data": {}})],
             [post()], Reject("error", "Invalid Sender ID")),
    SendCase("authentication-failed-401", MESSAGE, ACCOUNT,
             [Canned(401, failure("Authentication failed"))], [post()],
             Reject("http_401", "Authentication failed")),
    SendCase("sender-not-allowed-480-with-code-app-sid-redacted", MESSAGE, ACCOUNT,
             [Canned(480, failure(f"AppSid {APP_SID} cannot use specified SenderID", "ER-08"))],
             [post()], Reject("ER-08", "AppSid [redacted] cannot use specified SenderID")),
    SendCase("invalid-destination-482-without-envelope", MESSAGE, ACCOUNT,
             [Canned(482, "Invalid dest num")], [post()], Reject("http_482", "Invalid dest num")),
    SendCase("failure-without-message-keeps-the-body", MESSAGE, ACCOUNT,
             [Canned(406, {"success": False, "errorCode": "", "data": {}})], [post()],
             Reject("http_406", '{"success":false,"errorCode":"","data":{}}')),
    SendCase("too-many-requests-429-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, failure("Too many requests generated by this user"),
                     {"Retry-After": "20"})], [post()],
             Retry("http_429", '{"success":false,"message":"Too many requests generated by '
                               'this user","data":{}}', 20.0)),
    SendCase("request-failed-599-retry", MESSAGE, ACCOUNT,
             [Canned(599, failure("Request failed"))], [post()],
             Retry("http_599", '{"success":false,"message":"Request failed","data":{}}')),
    SendCase("server-error-503-retry", MESSAGE, ACCOUNT,
             [Canned(503, "Service Unavailable")], [post()],
             Retry("http_503", "Service Unavailable")),
    SendCase("timeout-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [post()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection-error-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)],
             [post()], Retry("transport_error", "ConnectError: connection reset by peer")),
    SendCase("200-that-is-not-json-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, "<html>Bad Gateway</html>")], [post()],
             Reject("malformed_response",
                    "HTTP 200 without a message id: <html>Bad Gateway</html>")),
    SendCase("200-json-without-envelope-rejected", MESSAGE, ACCOUNT,
             [Canned(200, {"MessageID": MESSAGE_ID})], [post()],
             Reject("malformed_response",
                    'HTTP 200 without a message id: {"MessageID":42000348806924}')),
]


def dlr_request(body: bytes, content_type: str | None = "application/json",
                token: str | None = TOKEN, query: dict[str, str] | None = None,
                method: str = "POST") -> WebhookRequest:
    params = dict(query or {})
    if token is not None:
        params["token"] = token
    base = "https://gw.example.test/sms/v1/webhooks/acc_unifonic/dlr/"
    url = base + (f"?{urlencode(params)}" if params else "")
    headers = {"Content-Type": content_type} if content_type else {}
    return WebhookRequest(method=method, url=url, headers=headers, query=params, body=body)


def as_json(value: Any, token: str | None = TOKEN) -> WebhookRequest:
    return dlr_request(json.dumps(value).encode(), token=token)


def as_form(fields: dict[str, str], token: str | None = TOKEN) -> WebhookRequest:
    return dlr_request(urlencode(fields).encode(), "application/x-www-form-urlencoded", token)


def report(dlr: str = "Delivered", **extra: str) -> dict[str, str]:
    return {"MessageID": str(MESSAGE_ID), "DLR": dlr, "Recipient": "966505980169",
            "TimeCreated": "2026-11-24 15:00:00", "SCTS": "2026-11-24 15:00:04",
            "DLRTimestamp": "2026-11-24 15:00:05", **extra}


AT = datetime(2026, 11, 24, 15, 0, 4, tzinfo=KSA)
ID = str(MESSAGE_ID)

WEBHOOK_CASES = [
    WebhookCase("json-delivered", as_json(report()), ACCOUNT,
                [StatusUpdate(ID, MessageState.DELIVERED, "Delivered", occurred_at=AT)]),
    WebhookCase("json-undeliverable-keeps-code-and-comment",
                as_json(report("Undeliverable", ErrorCode="ER-05",
                               Comments="No route found for the destination number")), ACCOUNT,
                [StatusUpdate(ID, MessageState.FAILED, "Undeliverable", error_code="ER-05",
                              error_detail="No route found for the destination number",
                              occurred_at=AT)]),
    WebhookCase("form-body-delivered", as_form(report()), ACCOUNT,
                [StatusUpdate(ID, MessageState.DELIVERED, "Delivered", occurred_at=AT)]),
    WebhookCase("query-only-get-report",
                dlr_request(b"", None, query={"MessageID": ID, "DLR": "Delivered"},
                            method="GET"), ACCOUNT,
                [StatusUpdate(ID, MessageState.DELIVERED, "Delivered")]),
    WebhookCase("numeric-message-id-and-status-field",
                as_json({"MessageID": MESSAGE_ID, "Status": "Rejected",
                         "ErrorMessage": "Invalid Sender ID", "ErrorCode": "ER-08"}), ACCOUNT,
                [StatusUpdate(ID, MessageState.FAILED, "Rejected", error_code="ER-08",
                              error_detail="Invalid Sender ID")]),
    WebhookCase("lower-camel-field-names",
                as_json({"messageId": ID, "status": "undelivered", "errorCode": "ER-07",
                         "description": "Message filtered"}), ACCOUNT,
                [StatusUpdate(ID, MessageState.FAILED, "undelivered", error_code="ER-07",
                              error_detail="Message filtered")]),
    WebhookCase("sent-and-queued-are-sent",
                as_json([report("Queued"), report("Sent")]), ACCOUNT,
                [StatusUpdate(ID, MessageState.SENT, "Queued", occurred_at=AT),
                 StatusUpdate(ID, MessageState.SENT, "Sent", occurred_at=AT)]),
    WebhookCase("expired-and-failed-are-failed",
                as_json([report("Expired"), report("Failed")]), ACCOUNT,
                [StatusUpdate(ID, MessageState.FAILED, "Expired", occurred_at=AT),
                 StatusUpdate(ID, MessageState.FAILED, "Failed", occurred_at=AT)]),
    WebhookCase("unknown-word-is-unknown-status", as_json(report("Scheduled")), ACCOUNT,
                [UnknownStatus(ID, "Scheduled")]),
    WebhookCase("scts-read-in-the-configured-zone", as_json(report()),
                account(report_utc_offset_minutes=240),
                [StatusUpdate(ID, MessageState.DELIVERED, "Delivered",
                              occurred_at=datetime(2026, 11, 24, 15, 0, 4,
                                                   tzinfo=timezone(timedelta(hours=4))))]),
    WebhookCase("iso-scts-with-zone-kept", as_json(report(SCTS="2026-11-24T12:00:04Z")),
                ACCOUNT,
                [StatusUpdate(ID, MessageState.DELIVERED, "Delivered",
                              occurred_at=datetime(2026, 11, 24, 12, 0, 4, tzinfo=UTC))]),
    WebhookCase("unreadable-scts-gives-no-time", as_json(report(SCTS="24/11/2026")), ACCOUNT,
                [StatusUpdate(ID, MessageState.DELIVERED, "Delivered")]),
    WebhookCase("no-message-id-is-payload-error", as_json({"DLR": "Delivered"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("no-status-is-payload-error", as_json({"MessageID": ID}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("broken-json-is-payload-error", dlr_request(b"{"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("json-scalar-is-payload-error", dlr_request(b"[1]"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("empty-body-and-query-is-payload-error",
                dlr_request(b"", None, method="GET"), ACCOUNT, WebhookPayloadError),
    WebhookCase("not-utf8-is-payload-error",
                dlr_request(b"MessageID=\xff", "application/x-www-form-urlencoded"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing-token-is-refused", as_json(report(), token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", as_json(report(), token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("account-without-token-refuses-everything", as_json(report(), token=""),
                replace(ACCOUNT, webhook_token=""), WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(unifonic, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(unifonic, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(unifonic, case)


def test_status_map_covers_only_reportable_states() -> None:
    assert set(unifonic.STATUS_MAP.values()) <= {
        MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED}
    assert all(word == word.lower() for word in unifonic.STATUS_MAP)


# --- balance and sender names --------------------------------------------------------------------


async def test_balance_and_sender_names_are_unsupported_without_a_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        assert await unifonic.balance(ACCOUNT, http) == Unsupported()
        assert await unifonic.sender_names(ACCOUNT, http) == Unsupported()


# --- stored models -------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    pytest.param({"app_sid": APP_SID}, id="console-app-sid"),
    pytest.param({"app_sid": "6v253153s1g7831s5"}, id="short-documented-example"),
    pytest.param({"app_sid": "a" * 100}, id="longest"),
])
def test_credentials_accepted(credentials: dict[str, str]) -> None:
    unifonic.Credentials.model_validate(credentials)


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"app_sid": "6v2531"}, id="too-short"),
    pytest.param({"app_sid": "axuN0U7Qlm qV1234"}, id="space"),
    pytest.param({"app_sid": APP_SID + "\n"}, id="line-break"),
    pytest.param({"app_sid": APP_SID, "sender_id": "ACME"}, id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        unifonic.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="defaults"),
    pytest.param({"sender_id": "ACME-AD", "message_type": 5, "per_message_callback": False,
                  "report_utc_offset_minutes": 240}, id="everything"),
    pytest.param({"sender_id": "Unifonic"}, id="alphanumeric-sender"),
    pytest.param({"message_type": 1}, id="warning-type"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    unifonic.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"message_type": 2}, id="undocumented-message-type"),
    pytest.param({"sender_id": ""}, id="empty-sender"),
    pytest.param({"sender_id": "A" * 17}, id="sender-too-long"),
    pytest.param({"sender_id": "ACME\nX"}, id="sender-line-break"),
    pytest.param({"report_utc_offset_minutes": 900}, id="offset-out-of-range"),
    pytest.param({"route": "4"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        unifonic.Config.model_validate(config)


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


async def test_send_and_delivery_reports_through_the_fake_over_loopback() -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app) as receiver_url:
        dlr_url = f"{receiver_url}/dlr?token={TOKEN}"
        fake = FakeUnifonic([APP_SID], dlr_url=dlr_url, senders={"ACME"}, balance="10.00")
        fake.script_delivery("971507679351")
        with serve_in_thread(fake.app) as base_url:
            live = replace(ACCOUNT, base_url=base_url, webhook_url_dlr=dlr_url,
                           config={"message_type": 3})
            async with httpx.AsyncClient() as http:
                first = await unifonic.send(sms(status_callback_url=dlr_url), live, http,
                                            now=NOW)
                second = await unifonic.send(
                    sms(to="+971507679351", text="مرحبا", status_callback_url=dlr_url),
                    live, http, now=NOW)
            deadline = time.monotonic() + 10
            while len(receiver.received) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    delivered_send, failed_send = fake.sends
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert first.provider_ids == (str(delivered_send.message_id),)
    assert second.provider_ids == (str(failed_send.message_id),)
    assert first.raw is not None
    assert first.raw["errorCode"] == "ER-00"
    assert dict(delivered_send.fields) == {
        "AppSid": APP_SID, "SenderID": "ACME", "Recipient": "966505980169",
        "Body": "Your code is 482913", "responseType": "JSON",
        "CorrelationID": MESSAGE.idempotency_key, "MessageType": "3"}
    assert failed_send.body == "مرحبا"
    events = []
    for webhook in receiver.received:
        unifonic.verify_webhook(webhook, live)
        events.extend(unifonic.parse_webhook(webhook, live))
    assert sorted((e.provider_message_id, e.state, e.error_code) for e in events
                  if isinstance(e, StatusUpdate)) == sorted([
        (str(delivered_send.message_id), MessageState.DELIVERED, None),
        (str(failed_send.message_id), MessageState.FAILED, "ER-05")])


async def test_fake_answers_unifonic_failures_the_module_keeps() -> None:
    fake = FakeUnifonic([APP_SID], senders={"ACME"}, balance="0.05", reject_duplicates=True)
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            wrong_sid = await unifonic.send(
                MESSAGE, replace(live, credentials={"app_sid": "x" * 30}), http, now=NOW)
            wrong_sender = await unifonic.send(sms(sender_id="OTHER"), live, http, now=NOW)
            too_short = await unifonic.send(sms(to="+9665059"), live, http, now=NOW)
            first = await unifonic.send(MESSAGE, live, http, now=NOW)
            duplicate = await unifonic.send(MESSAGE, live, http, now=NOW)
            no_money = await unifonic.send(sms(idempotency_key="other"), live, http, now=NOW)
            fake.fail_next(status=599)
            failed = await unifonic.send(sms(idempotency_key="third"), live, http, now=NOW)
    assert wrong_sid == Reject("http_401", "Authentication failed")
    assert wrong_sender == Reject("http_480", "This user cannot use specified SenderID")
    assert too_short == Reject("ER-04", "Dest num is too short")
    assert isinstance(first, Accepted)
    assert len(first.provider_ids) == 1
    assert duplicate == Reject("http_409", "This message is duplicate")
    assert no_money == Reject("ER-01", "No rate found or insufficient funds")
    assert failed == Retry("http_599",
                           '{"success":false,"message":"Request failed","data":{}}')
    assert len(fake.sends) == 1


_: SmsProvider = unifonic
