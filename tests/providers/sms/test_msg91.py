"""MSG91: flow sends, v2/v3 delivery reports, the URL token, balance and the stored models."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.msg91 import FakeMsg91
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
    Unsupported,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import msg91

AUTH_KEY = "412785AbCdEfGh6551a2b3P1"
TOKEN = "whk_5Jm2qX8rT4vN"
DLT_TEMPLATE = "1107160000000012345"
DLT_ENTITY = "1201159100000012345"
REQUEST_ID = "5762846b4f8d285d378b4567"
IST = timezone(timedelta(hours=5, minutes=30))
DLR_URL = "https://gw.example.test/v1/webhooks/acc_msg91/dlr"

ACCOUNT = AccountContext(
    account_id="acc_msg91",
    base_url="https://control.msg91.com",
    credentials={"auth_key": AUTH_KEY},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound="https://gw.example.test/v1/webhooks/acc_msg91/inbound",
    webhook_token=TOKEN,
)
MESSAGE = OutboundSms(
    message_id="msg_01",
    to="+919876543210",
    sender_id="ACMEIN",
    text="Your OTP is 482913. Do not share it. - ACME",
    encoding="GSM-7",
    segments=1,
    dlt_entity_id=DLT_ENTITY,
    dlt_template_id=DLT_TEMPLATE,
    status_callback_url=None,
    idempotency_key="idem_01",
    template_variables=("482913",),
)
HEADERS = {"authkey": AUTH_KEY, "content-type": "application/json"}
SUCCESS = {"type": "success", "message": REQUEST_ID}


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def flow(**changes: Any) -> Expected:
    """The flow request MESSAGE makes, with top-level fields changed (``None`` removes one)."""
    body: dict[str, Any] = {
        "template_id": DLT_TEMPLATE,
        "short_url": "0",
        "recipients": [{"mobiles": "919876543210", "VAR1": "482913"}],
        "sender": "ACMEIN",
    }
    body.update(changes)
    return Expected("POST", "/api/v5/flow/", headers=HEADERS,
                    json={key: value for key, value in body.items() if value is not None})


SEND_CASES = [
    SendCase("success-request-id-from-message", MESSAGE, ACCOUNT,
             [Canned(200, SUCCESS)], [flow()], Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("variables-named-VAR1-to-VARn-in-order",
             sms(template_variables=("Asha", "A-1029", "1,499.00")), ACCOUNT,
             [Canned(200, SUCCESS)],
             [flow(recipients=[{"mobiles": "919876543210", "VAR1": "Asha", "VAR2": "A-1029",
                                "VAR3": "1,499.00"}])],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("template-without-variables", sms(template_variables=()), ACCOUNT,
             [Canned(200, SUCCESS)], [flow(recipients=[{"mobiles": "919876543210"}])],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("msg91-template-id-mapped-from-dlt-template-id", MESSAGE,
             account(template_ids={DLT_TEMPLATE: "65f1c2a9d6fc05"}),
             [Canned(200, SUCCESS)], [flow(template_id="65f1c2a9d6fc05")],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("variable-names-from-config", sms(template_variables=("Asha", "482913")),
             account(variable_names={DLT_TEMPLATE: ["name", "OTP"]}),
             [Canned(200, SUCCESS)],
             [flow(recipients=[{"mobiles": "919876543210", "name": "Asha", "OTP": "482913"}])],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("short-url-and-route-from-config", MESSAGE, account(short_url=True, route="4"),
             [Canned(200, SUCCESS)], [flow(short_url="1", route="4")],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("ucs2-text-sets-unicode", sms(encoding="UCS-2"), ACCOUNT,
             [Canned(200, SUCCESS)], [flow(unicode=1)], Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("no-sender-leaves-the-flow-sender", sms(sender_id=None), ACCOUNT,
             [Canned(200, SUCCESS)], [flow(sender=None)], Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("non-indian-number-in-international-form", sms(to="+447911123456"), ACCOUNT,
             [Canned(200, SUCCESS)],
             [flow(recipients=[{"mobiles": "447911123456", "VAR1": "482913"}])],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("no-dlt-template-rejected-without-a-request", sms(dlt_template_id=None), ACCOUNT,
             [], [], Reject("dlt_template_required",
                            "MSG91 sends stored templates: the message needs a dlt_template_id")),
    SendCase("variable-count-differs-from-named-variables-rejected",
             sms(template_variables=("482913",)),
             account(variable_names={DLT_TEMPLATE: ["name", "OTP"]}), [], [],
             Reject("template_variables_mismatch",
                    f"template {DLT_TEMPLATE} has 2 MSG91 variables, the message fills 1")),
    SendCase("number-not-e164-rejected", sms(to="9876543210"), ACCOUNT, [], [],
             Reject("invalid_number", "the recipient must be an E.164 number")),
    SendCase("stored-credentials-invalid-rejected",
             MESSAGE, replace(ACCOUNT, credentials={"auth_key": "short key"}), [], [],
             Reject("invalid_credentials",
                    "auth_key: String should match pattern '^[A-Za-z0-9]{16,100}$'")),
    SendCase("error-body-at-200-with-code", MESSAGE, ACCOUNT,
             [Canned(200, {"type": "error", "message": "Invalid Template ID", "code": "211"})],
             [flow()], Reject("211", "Invalid Template ID")),
    SendCase("error-body-at-200-without-code", MESSAGE, ACCOUNT,
             [Canned(200, {"type": "error", "message": "Sender ID not approved"})],
             [flow()], Reject("error", "Sender ID not approved")),
    SendCase("auth-failure-401", MESSAGE, ACCOUNT,
             [Canned(401, {"type": "error", "message": "Authentication failure"})],
             [flow()], Reject("http_401", "Authentication failure")),
    SendCase("ip-not-whitelisted-418-key-redacted", MESSAGE, ACCOUNT,
             [Canned(400, {"type": "error", "code": 418,
                           "message": f"IP not whitelisted for authkey {AUTH_KEY}"})],
             [flow()], Reject("418", "IP not whitelisted for authkey [redacted]")),
    SendCase("client-error-without-msg91-body", MESSAGE, ACCOUNT,
             [Canned(404, "Not Found")], [flow()], Reject("http_404", "Not Found")),
    SendCase("rate-limited-429-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, "Too Many Requests", {"Retry-After": "30"})], [flow()],
             Retry("http_429", "Too Many Requests", 30.0)),
    SendCase("server-error-500-retry", MESSAGE, ACCOUNT,
             [Canned(500, {"type": "error", "message": "Internal Server Error"})], [flow()],
             Retry("http_500", '{"type":"error","message":"Internal Server Error"}')),
    SendCase("timeout-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [flow()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection-error-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)],
             [flow()], Retry("transport_error", "ConnectError: connection reset by peer")),
    SendCase("200-that-is-not-json-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, "<html>Bad Gateway</html>")], [flow()],
             Reject("malformed_response",
                    "HTTP 200 without a request id: <html>Bad Gateway</html>")),
    SendCase("success-without-request-id-rejected", MESSAGE, ACCOUNT,
             [Canned(200, {"type": "success"})], [flow()],
             Reject("malformed_response",
                    'HTTP 200 without a request id: {"type":"success"}')),
]


def dlr_request(body: bytes, content_type: str, token: str | None = TOKEN) -> WebhookRequest:
    query = {"token": token} if token is not None else {}
    url = DLR_URL + (f"?{urlencode(query)}" if query else "")
    return WebhookRequest(method="POST", url=url, headers={"Content-Type": content_type},
                          query=query, body=body)


def v2(*items: dict[str, Any], token: str | None = TOKEN) -> WebhookRequest:
    """A v2 report: form-encoded ``data`` holding the items as a JSON array."""
    body = urlencode({"data": json.dumps(list(items), separators=(",", ":"))}).encode()
    return dlr_request(body, "application/x-www-form-urlencoded", token)


def as_json(value: Any, token: str | None = TOKEN) -> WebhookRequest:
    return dlr_request(json.dumps(value).encode(), "application/json", token)


def report(status: str = "1", desc: str = "DELIVERED", **extra: str) -> dict[str, str]:
    return {"date": "2024-05-22 10:06:20", "amount": "0.01", "clientid": "", "INMSID": "0",
            "CRQID": "0", "ctCode": "900", "number": "919876543210", "credit": "1",
            "status": status, "desc": desc, "failedReason": "", **extra}


def item(*reports: dict[str, str], request_id: str = REQUEST_ID) -> dict[str, Any]:
    return {"senderId": "ACMEIN", "requestId": request_id, "report": list(reports),
            "userId": "270001", "campaignName": "API"}


AT = datetime(2024, 5, 22, 10, 6, 20, tzinfo=IST)
V3 = {"date": "2024-05-22 09:58:16", "number": "919876543210", "senderId": "ACMEIN",
      "amount": "0.01", "requestId": REQUEST_ID, "INMSID": "0", "CRQID": "0", "credit": "1",
      "userId": "270001", "campaignName": "API", "status": "1", "desc": "DELIVERED"}

WEBHOOK_CASES = [
    WebhookCase("v2-delivered", v2(item(report())), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "1", occurred_at=AT)]),
    WebhookCase("v2-failed-keeps-desc-and-failed-reason",
                v2(item(report("2", "FAILED", failedReason="Absent subscriber"))), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.FAILED, "2",
                              error_detail="FAILED: Absent subscriber", occurred_at=AT)]),
    WebhookCase("v2-ndnc-is-failed", v2(item(report("9", "NDNC"))), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.FAILED, "9", error_detail="NDNC",
                              occurred_at=AT)]),
    WebhookCase("v2-rejected-16-and-25-blocked-17", v2(
        item(report("16", "REJECTED"), request_id="r16"),
        item(report("25", "REJECTED"), request_id="r25"),
        item(report("17", "BLOCKED"), request_id="r17")), ACCOUNT,
        [StatusUpdate("r16", MessageState.FAILED, "16", error_detail="REJECTED", occurred_at=AT),
         StatusUpdate("r25", MessageState.FAILED, "25", error_detail="REJECTED", occurred_at=AT),
         StatusUpdate("r17", MessageState.FAILED, "17", error_detail="BLOCKED",
                      occurred_at=AT)]),
    WebhookCase("v2-several-reports-in-body-order",
                v2(item(report("8", "SUBMITTED"), report("1"))), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.SENT, "8", occurred_at=AT),
                 StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "1", occurred_at=AT)]),
    WebhookCase("v2-unknown-code-is-unknown-status", v2(item(report("42", "SOMETHING NEW"))),
                ACCOUNT, [UnknownStatus(REQUEST_ID, "42")]),
    WebhookCase("v2-unreadable-date-gives-no-time", v2(item(report(date="22/05/2024"))), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "1")]),
    WebhookCase("v2-data-sent-as-json-object", as_json({"data": json.dumps([item(report())])}),
                ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "1", occurred_at=AT)]),
    WebhookCase("v3-flat-json-delivered", as_json(V3), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "1",
                              occurred_at=datetime(2024, 5, 22, 9, 58, 16, tzinfo=IST))]),
    WebhookCase("v3-numeric-status-failed",
                as_json({**V3, "status": 2, "desc": "FAILED"}), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.FAILED, "2", error_detail="FAILED",
                              occurred_at=datetime(2024, 5, 22, 9, 58, 16, tzinfo=IST))]),
    WebhookCase("v4-has-no-request-id-so-nothing",
                as_json([{"data": [{"meta": "0", "INMSID": "0", "description": "DELIVERED",
                                    "ts": 1726729500}], "event": "delivered"}]), ACCOUNT, []),
    WebhookCase("inbound-longcode-forward-is-nothing",
                dlr_request(urlencode({"mobile": "919876543210", "message": "STOP",
                                       "keyword": "ACME"}).encode(),
                            "application/x-www-form-urlencoded"), ACCOUNT, []),
    WebhookCase("v2-data-not-json-is-payload-error",
                dlr_request(b"data=not-json", "application/x-www-form-urlencoded"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("v2-item-without-request-id-is-payload-error",
                v2({"senderId": "ACMEIN", "report": [report()]}), ACCOUNT, WebhookPayloadError),
    WebhookCase("v2-report-without-status-is-payload-error",
                v2(item({"date": "2024-05-22 10:06:20", "desc": "DELIVERED"})), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("unrelated-form-is-payload-error",
                dlr_request(b"hello=world", "application/x-www-form-urlencoded"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("broken-json-is-payload-error", dlr_request(b"{", "application/json"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing-token-is-refused", v2(item(report()), token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", v2(item(report()), token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("account-without-token-refuses-everything",
                v2(item(report()), token=""), replace(ACCOUNT, webhook_token=""),
                WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(msg91, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(msg91, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(msg91, case)


# --- balance and sender names --------------------------------------------------------------------


async def query(handler: Any, call: Any, account_: AccountContext = ACCOUNT) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await call(account_, http)


async def test_balance_is_the_route_credits_as_text() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="1500\n")

    assert await query(handler, msg91.balance) == Balance("1500", None)
    assert seen[0].method == "GET"
    assert seen[0].url.path == "/api/balance.php"
    assert dict(seen[0].url.params) == {"authkey": AUTH_KEY, "type": "4"}


async def test_balance_asks_for_the_configured_route() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="20.5")

    assert await query(handler, msg91.balance, account(route="1")) == Balance("20.5", None)
    assert seen[0].url.params["type"] == "1"


async def test_balance_error_text_is_a_reject_with_the_key_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"Invalid authkey {AUTH_KEY}")

    with pytest.raises(ProviderError) as raised:
        await query(handler, msg91.balance)
    assert raised.value.failure == Reject("error", "Invalid authkey [redacted]")


async def test_balance_server_error_is_a_retry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="Service Unavailable", headers={"Retry-After": "5"})

    with pytest.raises(ProviderError) as raised:
        await query(handler, msg91.balance)
    assert raised.value.failure == Retry("http_503", "Service Unavailable", 5.0)


async def test_balance_transport_error_leaks_neither_url_nor_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with pytest.raises(ProviderError) as raised:
        await query(handler, msg91.balance)
    assert raised.value.failure == Retry("transport_error", "ConnectError: cannot reach [url]")
    assert AUTH_KEY not in str(raised.value)
    assert raised.value.__suppress_context__


async def test_sender_names_are_unsupported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    assert await query(handler, msg91.sender_names) == Unsupported()


# --- stored models -------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    pytest.param({"auth_key": "412785AbCdEfGh6551a2b3P1"}, id="panel-auth-key"),
    pytest.param({"auth_key": "a" * 100}, id="longest"),
])
def test_credentials_accepted(credentials: dict[str, str]) -> None:
    msg91.Credentials.model_validate(credentials)


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"auth_key": "412785AbCdEf"}, id="too-short"),
    pytest.param({"auth_key": "412785AbCdEfGh 6551a2b3P1"}, id="space"),
    pytest.param({"auth_key": "412785AbCdEfGh6551a2b3P1\n"}, id="line-break"),
    pytest.param({"auth_key": AUTH_KEY, "sender": "ACMEIN"}, id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        msg91.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="defaults"),
    pytest.param({"template_ids": {DLT_TEMPLATE: "65f1c2a9d6fc05"},
                  "variable_names": {DLT_TEMPLATE: ["name", "OTP"]},
                  "short_url": True, "route": "4"}, id="everything"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    msg91.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"template_ids": {"otp-template": "65f1c2a9d6fc05"}}, id="dlt-id-not-digits"),
    pytest.param({"template_ids": {DLT_TEMPLATE: "65f1 c2a9"}}, id="msg91-id-with-space"),
    pytest.param({"variable_names": {DLT_TEMPLATE: ["OTP", "OTP"]}}, id="repeated-name"),
    pytest.param({"variable_names": {DLT_TEMPLATE: ["mobiles"]}}, id="reserved-name"),
    pytest.param({"variable_names": {DLT_TEMPLATE: ["my var"]}}, id="name-with-space"),
    pytest.param({"route": "trans actional"}, id="route-with-space"),
    pytest.param({"sender": "ACMEIN"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        msg91.Config.model_validate(config)


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


async def test_send_and_delivery_report_through_the_fake_over_loopback() -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app) as receiver_url:
        dlr_url = f"{receiver_url}/dlr?token={TOKEN}"
        fake = FakeMsg91([AUTH_KEY], dlr_url=dlr_url, templates={DLT_TEMPLATE})
        fake.script_delivery("919876543210", "2", failed_reason="Absent subscriber")
        with serve_in_thread(fake.app) as base_url:
            live = replace(ACCOUNT, base_url=base_url, webhook_url_dlr=dlr_url)
            async with httpx.AsyncClient() as http:
                outcome = await msg91.send(sms(template_variables=("482913",)), live, http,
                                           now=NOW)
            deadline = time.monotonic() + 10
            while not receiver.received and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    [sent] = fake.sends
    assert outcome == Accepted((sent.request_id,), raw={"message": sent.request_id,
                                                        "type": "success"})
    assert sent.body == {"template_id": DLT_TEMPLATE, "short_url": "0", "sender": "ACMEIN",
                         "recipients": [{"mobiles": "919876543210", "VAR1": "482913"}]}
    [webhook] = receiver.received
    msg91.verify_webhook(webhook, live)
    [event] = msg91.parse_webhook(webhook, live)
    assert isinstance(event, StatusUpdate)
    assert (event.provider_message_id, event.state, event.provider_status, event.error_detail) == (
        sent.request_id, MessageState.FAILED, "2", "FAILED: Absent subscriber")


async def test_fake_refuses_a_wrong_auth_key_as_msg91_does() -> None:
    fake = FakeMsg91([AUTH_KEY])
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url, credentials={"auth_key": "x" * 24})
        async with httpx.AsyncClient() as http:
            outcome = await msg91.send(MESSAGE, live, http, now=NOW)
            balance = msg91.balance(live, http)
            with pytest.raises(ProviderError) as raised:
                await balance
    assert outcome == Reject("http_401", "Authentication failure")
    assert raised.value.failure == Reject("error", "Authentication failure")
    assert fake.sends == []


_: SmsProvider = msg91
