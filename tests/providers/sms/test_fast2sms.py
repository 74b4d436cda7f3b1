"""Fast2SMS: bulkV2 sends on the dlt_manual and dlt routes, delivery reports, the URL token,
the wallet and the stored models."""

from __future__ import annotations

import asyncio
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

from tests.fakes.fast2sms import FakeFast2Sms
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
from tidings.providers.sms import fast2sms

API_KEY = "Fq7Lx2Vb9Nc4Md8Rk1Tz6Hs3Jw5Pg0YaEuIoCnB"
TOKEN = "whk_8Kd3pW7sZ1qR"
DLT_TEMPLATE = "1107160000000012345"
DLT_ENTITY = "1201159100000012345"
MESSAGE_ID = "161234"
REQUEST_ID = "lwdtp7cjyqxvfe9"
TEXT = "Hi Asha, your OTP is 482913. Do not share it. - ACME"
DLR_URL = "https://gw.example.test/v1/webhooks/acc_f2s/dlr"

ACCOUNT = AccountContext(
    account_id="acc_f2s",
    base_url="https://www.fast2sms.com",
    credentials={"api_key": API_KEY},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound="https://gw.example.test/v1/webhooks/acc_f2s/inbound",
    webhook_token=TOKEN,
)
DLT_ROUTE = {"route": "dlt", "message_ids": {DLT_TEMPLATE: MESSAGE_ID}}
MESSAGE = OutboundSms(
    message_id="msg_01",
    to="+919876543210",
    sender_id="ACMEIN",
    text=TEXT,
    encoding="GSM-7",
    segments=1,
    dlt_entity_id=DLT_ENTITY,
    dlt_template_id=DLT_TEMPLATE,
    status_callback_url=None,
    idempotency_key="idem_01",
    template_variables=("Asha", "482913"),
)
HEADERS = {"authorization": API_KEY, "content-type": "application/json"}
SUCCESS = {"return": True, "request_id": REQUEST_ID, "message": ["SMS sent successfully."]}


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def manual(**changes: Any) -> Expected:
    """The dlt_manual request MESSAGE makes, with fields changed."""
    body = {"route": "dlt_manual", "sender_id": "ACMEIN", "message": TEXT,
            "template_id": DLT_TEMPLATE, "entity_id": DLT_ENTITY, "numbers": "9876543210",
            **changes}
    return Expected("POST", "/dev/bulkV2", headers=HEADERS, json=body)


def stored(**changes: Any) -> Expected:
    """The dlt-route request MESSAGE makes, with fields changed (``None`` removes one)."""
    body: dict[str, Any] = {"route": "dlt", "sender_id": "ACMEIN", "message": MESSAGE_ID,
                            "variables_values": "Asha|482913", "numbers": "9876543210",
                            **changes}
    return Expected("POST", "/dev/bulkV2", headers=HEADERS,
                    json={key: value for key, value in body.items() if value is not None})


def error(status_code: int, message: Any) -> dict[str, Any]:
    return {"return": False, "status_code": status_code, "message": message}


SEND_CASES = [
    SendCase("dlt-manual-sends-text-with-both-dlt-ids", MESSAGE, ACCOUNT,
             [Canned(200, SUCCESS)], [manual()], Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("dlt-manual-is-the-default-route", MESSAGE, account(route="dlt_manual"),
             [Canned(200, SUCCESS)], [manual()], Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("dlt-route-sends-message-id-and-piped-variables", MESSAGE, account(**DLT_ROUTE),
             [Canned(200, SUCCESS)], [stored()], Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("dlt-route-template-without-variables", sms(template_variables=()),
             account(**DLT_ROUTE), [Canned(200, SUCCESS)], [stored(variables_values=None)],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("dlt-route-entity-id-kept-in-dlt-manager", sms(dlt_entity_id=None),
             account(**DLT_ROUTE), [Canned(200, SUCCESS)], [stored()],
             Accepted((REQUEST_ID,), raw=SUCCESS)),
    SendCase("numeric-request-id", MESSAGE, ACCOUNT,
             [Canned(200, {"return": True, "request_id": 784512, "message": "sent"})],
             [manual()],
             Accepted(("784512",), raw={"return": True, "request_id": 784512,
                                        "message": "sent"})),
    SendCase("dlt-manual-without-template-rejected-without-a-request",
             sms(dlt_template_id=None), ACCOUNT, [], [],
             Reject("dlt_template_required", "a Fast2SMS DLT send needs a dlt_template_id")),
    SendCase("dlt-manual-without-entity-rejected-without-a-request", sms(dlt_entity_id=None),
             ACCOUNT, [], [],
             Reject("dlt_entity_required", "a Fast2SMS DLT send needs a dlt_entity_id")),
    SendCase("dlt-route-unmapped-template-rejected", sms(dlt_template_id="1107160000000099999"),
             account(**DLT_ROUTE), [], [],
             Reject("dlt_message_id_unknown", "no DLT Manager Message_ID is configured for DLT "
                                              "template 1107160000000099999")),
    SendCase("dlt-route-variable-holding-pipe-rejected", sms(template_variables=("A|B", "1")),
             account(**DLT_ROUTE), [], [],
             Reject("invalid_template_variable",
                    "a template variable holds '|', Fast2SMS's variable separator")),
    SendCase("non-indian-number-rejected", sms(to="+447911123456"), ACCOUNT, [], [],
             Reject("unsupported_destination",
                    "Fast2SMS sends to Indian mobile numbers (+91 and 10 digits) only")),
    SendCase("indian-number-of-wrong-length-rejected", sms(to="+91987654321"), ACCOUNT, [], [],
             Reject("unsupported_destination",
                    "Fast2SMS sends to Indian mobile numbers (+91 and 10 digits) only")),
    SendCase("missing-sender-rejected", sms(sender_id=None), ACCOUNT, [], [],
             Reject("sender_id_required", "Fast2SMS needs the DLT sender id (header)")),
    SendCase("stored-config-invalid-rejected", MESSAGE, account(route="dlt"), [], [],
             Reject("invalid_config", "value: Value error, the dlt route needs message_ids "
                                      "(DLT template id -> Message_ID)")),
    SendCase("invalid-key-401-code-412", MESSAGE, ACCOUNT,
             [Canned(401, error(412, "Invalid Authentication, Check Authorization Key"))],
             [manual()], Reject("412", "Invalid Authentication, Check Authorization Key")),
    SendCase("no-wallet-balance-400-code-416", MESSAGE, ACCOUNT,
             [Canned(400, error(416, "You don't have sufficient wallet balance"))], [manual()],
             Reject("416", "You don't have sufficient wallet balance")),
    SendCase("template-blacklisted-code-500-at-http-400-is-a-reject", MESSAGE, ACCOUNT,
             [Canned(400, error(500, "Template/Sender id blacklisted at DLT"))], [manual()],
             Reject("500", "Template/Sender id blacklisted at DLT")),
    SendCase("error-at-200-with-message-list", MESSAGE, ACCOUNT,
             [Canned(200, error(995, ["Spamming detected", "try later"]))], [manual()],
             Reject("995", "Spamming detected; try later")),
    SendCase("error-echoing-the-key-is-redacted", MESSAGE, ACCOUNT,
             [Canned(401, error(413, f"Authorization Key {API_KEY} Disabled"))], [manual()],
             Reject("413", "Authorization Key [redacted] Disabled")),
    SendCase("client-error-without-fast2sms-body", MESSAGE, ACCOUNT,
             [Canned(400, "Bad Request")], [manual()], Reject("http_400", "Bad Request")),
    SendCase("rate-limited-429-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, "Too Many Requests", {"Retry-After": "12"})], [manual()],
             Retry("http_429", "Too Many Requests", 12.0)),
    SendCase("bad-gateway-502-retry", MESSAGE, ACCOUNT, [Canned(502, "<html>502</html>")],
             [manual()], Retry("http_502", "<html>502</html>")),
    SendCase("timeout-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectTimeout)],
             [manual()], Retry("timeout", "ConnectTimeout: connection reset by peer")),
    SendCase("200-without-request-id-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, {"return": True})], [manual()],
             Reject("malformed_response", 'HTTP 200 without a request id: {"return":true}')),
]


def dlr_request(body: bytes, content_type: str | None, token: str | None = TOKEN,
                method: str = "POST", fields: dict[str, str] | None = None) -> WebhookRequest:
    query = {**({"token": token} if token is not None else {}), **(fields or {})}
    url = DLR_URL + (f"?{urlencode(query)}" if query else "")
    headers = {"Content-Type": content_type} if content_type else {}
    return WebhookRequest(method=method, url=url, headers=headers, query=query, body=body)


def as_json(value: Any, token: str | None = TOKEN) -> WebhookRequest:
    return dlr_request(json.dumps(value).encode(), "application/json", token)


def report(status: str = "Delivered", **extra: Any) -> dict[str, Any]:
    return {"request_id": REQUEST_ID, "mobile": "9876543210", "status": status,
            "sender_id": "ACMEIN", "route": "dlt_manual", **extra}


WEBHOOK_CASES = [
    WebhookCase("json-delivered", as_json(report()), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "Delivered")]),
    WebhookCase("json-failed-keeps-status-description",
                as_json(report("Failed", status_description="Absent subscriber")), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.FAILED, "Failed",
                              error_detail="Absent subscriber")]),
    WebhookCase("status-words-any-case", as_json(report("UNDELIVERED", description="DND")),
                ACCOUNT, [StatusUpdate(REQUEST_ID, MessageState.FAILED, "UNDELIVERED",
                                       error_detail="DND")]),
    WebhookCase("json-sent", as_json(report("Sent")), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.SENT, "Sent")]),
    WebhookCase("json-array-in-order",
                as_json([report("Sent"), {**report(), "request_id": "q2w3e4r5t6y7u8i"}]),
                ACCOUNT, [StatusUpdate(REQUEST_ID, MessageState.SENT, "Sent"),
                          StatusUpdate("q2w3e4r5t6y7u8i", MessageState.DELIVERED,
                                       "Delivered")]),
    WebhookCase("form-body", dlr_request(urlencode(report()).encode(),
                                         "application/x-www-form-urlencoded"), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "Delivered")]),
    WebhookCase("get-with-the-report-in-the-query",
                dlr_request(b"", None, method="GET",
                            fields={"request_id": REQUEST_ID, "status": "Delivered"}), ACCOUNT,
                [StatusUpdate(REQUEST_ID, MessageState.DELIVERED, "Delivered")]),
    WebhookCase("unknown-word-is-unknown-status", as_json(report("Queued at operator")),
                ACCOUNT, [UnknownStatus(REQUEST_ID, "Queued at operator")]),
    WebhookCase("missing-request-id-is-payload-error",
                as_json({"status": "Delivered", "mobile": "9876543210"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing-status-is-payload-error", as_json({"request_id": REQUEST_ID}),
                ACCOUNT, WebhookPayloadError),
    WebhookCase("broken-json-is-payload-error", dlr_request(b"{", "application/json"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("array-of-non-objects-is-payload-error", as_json(["Delivered"]), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("empty-get-is-payload-error", dlr_request(b"", None, method="GET"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing-token-is-refused", as_json(report(), token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", as_json(report(), token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(fast2sms, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(fast2sms, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(fast2sms, case)


# --- wallet and sender names ---------------------------------------------------------------------


async def wallet(answer: httpx.Response | Exception) -> tuple[Balance, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await fast2sms.balance(ACCOUNT, http), seen


async def wallet_failure(answer: httpx.Response | Exception) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await wallet(answer)
    assert API_KEY not in str(raised.value)
    return raised.value


async def test_balance_is_the_wallet_in_inr_asked_with_the_key_in_a_header() -> None:
    balance, [request] = await wallet(httpx.Response(200, json={"return": True,
                                                                "wallet": "1234.50"}))
    assert balance == Balance("1234.50", "INR")
    assert (request.method, request.url.path, dict(request.url.params)) == (
        "POST", "/dev/wallet", {})
    assert request.headers["authorization"] == API_KEY


async def test_balance_number_is_kept_as_written() -> None:
    balance, _ = await wallet(httpx.Response(200, text='{"return": true, "wallet": 123.40}'))
    assert balance == Balance("123.40", "INR")


async def test_balance_with_an_invalid_key_is_fast2sms_code() -> None:
    failure = await wallet_failure(httpx.Response(401, json=error(
        412, "Invalid Authentication, Check Authorization Key")))
    assert failure.failure == Reject("412", "Invalid Authentication, Check Authorization Key")


async def test_balance_error_echoing_the_key_is_redacted() -> None:
    failure = await wallet_failure(httpx.Response(401, json=error(413, f"Key {API_KEY} off")))
    assert failure.failure == Reject("413", "Key [redacted] off")


async def test_balance_without_wallet_is_malformed() -> None:
    failure = await wallet_failure(httpx.Response(200, json={"return": True}))
    assert failure.failure == Reject("malformed_response",
                                     'the wallet answer has no balance: {"return":true}')


async def test_balance_rate_limited_is_a_retry() -> None:
    failure = await wallet_failure(httpx.Response(429, json=error(429, "Too many requests"),
                                                  headers={"Retry-After": "3"}))
    assert isinstance(failure.failure, Retry)
    assert failure.failure.retry_after == 3.0


async def test_balance_transport_error_is_a_retry() -> None:
    failure = await wallet_failure(httpx.ReadTimeout("read timed out"))
    assert failure.failure == Retry("timeout", "ReadTimeout: read timed out")


async def test_sender_names_are_unsupported() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))) \
            as http:
        assert await fast2sms.sender_names(ACCOUNT, http) == Unsupported()


# --- stored models -------------------------------------------------------------------------------


def test_credentials_accept_a_dev_api_key() -> None:
    fast2sms.Credentials.model_validate({"api_key": API_KEY})


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"api_key": "short"}, id="too-short"),
    pytest.param({"api_key": API_KEY[:20] + " " + API_KEY[20:]}, id="space"),
    pytest.param({"api_key": API_KEY, "sender_id": "ACMEIN"}, id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        fast2sms.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="defaults-to-dlt-manual"),
    pytest.param({"route": "dlt_manual"}, id="dlt-manual"),
    pytest.param(DLT_ROUTE, id="dlt-with-message-ids"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    fast2sms.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"route": "q"}, id="quick-route-is-not-dlt"),
    pytest.param({"route": "dlt"}, id="dlt-without-message-ids"),
    pytest.param({"route": "dlt", "message_ids": {"otp": MESSAGE_ID}}, id="dlt-id-not-digits"),
    pytest.param({"route": "dlt", "message_ids": {DLT_TEMPLATE: "OTP-1"}},
                 id="message-id-not-digits"),
    pytest.param({"sender_id": "ACMEIN"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        fast2sms.Config.model_validate(config)


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
        fake = FakeFast2Sms([API_KEY], dlr_url=dlr_url, message_ids={MESSAGE_ID},
                            wallet="10.00")
        with serve_in_thread(fake.app) as base_url:
            manual_account = replace(ACCOUNT, base_url=base_url, webhook_url_dlr=dlr_url)
            stored_account = replace(manual_account, config=DLT_ROUTE)
            async with httpx.AsyncClient() as http:
                first = await fast2sms.send(MESSAGE, manual_account, http, now=NOW)
                second = await fast2sms.send(MESSAGE, stored_account, http, now=NOW)
                balance = await fast2sms.balance(manual_account, http)
            deadline = time.monotonic() + 10
            while len(receiver.received) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    manual_send, stored_send = fake.sends
    assert first == Accepted((manual_send.request_id,), raw={
        "return": True, "request_id": manual_send.request_id,
        "message": ["SMS sent successfully."]})
    assert isinstance(second, Accepted)
    assert second.provider_ids == (stored_send.request_id,)
    assert dict(manual_send.fields) == manual().json
    assert dict(stored_send.fields) == stored().json
    assert balance == Balance("9.7000", "INR")
    events = []
    for webhook in receiver.received:
        fast2sms.verify_webhook(webhook, manual_account)
        events.extend(fast2sms.parse_webhook(webhook, manual_account))
    assert sorted((e.provider_message_id, e.state) for e in events
                  if isinstance(e, StatusUpdate)) == sorted(
        [(manual_send.request_id, MessageState.DELIVERED),
         (stored_send.request_id, MessageState.DELIVERED)])


async def test_fake_answers_fast2sms_codes_the_module_keeps() -> None:
    fake = FakeFast2Sms([API_KEY], message_ids={MESSAGE_ID}, wallet="0.10")
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            no_money = await fast2sms.send(MESSAGE, live, http, now=NOW)
            wrong_key = await fast2sms.send(
                MESSAGE, replace(live, credentials={"api_key": "x" * 40}), http, now=NOW)
            unknown_id = await fast2sms.send(
                MESSAGE, replace(live, config={"route": "dlt",
                                               "message_ids": {DLT_TEMPLATE: "999999"}}),
                http, now=NOW)
    assert no_money == Reject("416", "You don't have sufficient wallet balance")
    assert wrong_key == Reject("412", "Invalid Authentication, Check Authorization Key")
    assert unknown_id == Reject("424", "Invalid Message ID")
    assert fake.sends == []


_: SmsProvider = fast2sms
