"""Infobip: sends and webhooks as tables of wire shapes, then the base URL, account queries and
the stored models, then the module against the fake over a real loopback socket."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.infobip import FakeInfobip, inbound_body, request_error
from tests.fakes.server import free_port, serve_in_thread
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
    InboundMessage,
    OutboundSms,
    ProviderError,
    Reject,
    Retry,
    SmsProvider,
    StatusUpdate,
    UnknownStatus,
    WebhookEvent,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import infobip

API_KEY = "957df92101cfd4e4e74ce44cf5ab68b9-6e2ec23a-46bc-4597-b341-35c0ae0b3b95"
TOKEN = "whk_Infobip7Qe2"
HOST = "https://e1zz23.api.infobip.com"
DLR_URL = f"https://gw.example.test/sms/v1/webhooks/acc_ib/dlr/?token={TOKEN}"
INBOUND_URL = f"https://gw.example.test/sms/v1/webhooks/acc_ib/inbound/?token={TOKEN}"
MESSAGE_ID = "2250be2d4219-3af1-78856-aabe-1362af1edfd2"
BULK_ID = "2034072219640523072"

ACCOUNT = AccountContext(
    account_id="acc_ib",
    base_url=infobip.default_base_url,  # no operator override: the config's host is used
    credentials={"api_key": API_KEY},
    config={"base_url": HOST},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound=INBOUND_URL,
    webhook_token=TOKEN,
)
MESSAGE = OutboundSms(
    message_id="msg_01", to="+41793026727", sender_id="InfoSMS", text="Your code is 1234",
    encoding="GSM-7", segments=1, dlt_entity_id=None, dlt_template_id=None,
    status_callback_url=None, idempotency_key="idem_01",
)
HEADERS = {"authorization": f"App {API_KEY}", "accept": "application/json",
           "content-type": "application/json"}
PENDING = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
           "description": "Message sent to next instance"}
SUCCESS = {"bulkId": BULK_ID, "messages": [{"messageId": MESSAGE_ID, "status": PENDING,
                                            "destination": "41793026727",
                                            "details": {"messageCount": 1}}]}


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def send_request(**changes: Any) -> Expected:
    """The send MESSAGE makes, with fields of its message entry changed (``None`` removes)."""
    entry: dict[str, Any] = {
        "sender": "InfoSMS",
        "destinations": [{"to": "41793026727"}],
        "content": {"text": "Your code is 1234"},
        "webhooks": {"delivery": {"url": DLR_URL}, "contentType": "application/json"},
    }
    entry.update(changes)
    return Expected("POST", "/sms/3/messages", headers=HEADERS, json={
        "messages": [{key: value for key, value in entry.items() if value is not None}]})


def error(status: int, message_id: str, text: str, **headers: str) -> Canned:
    return Canned(status, request_error(message_id, text),
                  headers={k.replace("_", "-"): v for k, v in headers.items()})


def rejected(name: str, description: str, group: str = "REJECTED") -> Canned:
    status = {"groupId": 5, "groupName": group, "id": 14, "name": name,
              "description": description}
    return Canned(200, {"bulkId": BULK_ID, "messages": [
        {"messageId": MESSAGE_ID, "status": status, "destination": "41793026727"}]})


SEND_CASES = [
    SendCase("200 pending: accepted under the messageId, the answer kept",
             MESSAGE, ACCOUNT, [Canned(200, SUCCESS)], [send_request()],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("the message's own callback URL wins over the account's DLR URL",
             sms(status_callback_url="https://tenant.example/cb?m=1"), ACCOUNT,
             [Canned(200, SUCCESS)],
             [send_request(webhooks={"delivery": {"url": "https://tenant.example/cb?m=1"},
                                     "contentType": "application/json"})],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("no sender: left out for the account's default sender",
             sms(sender_id=None), ACCOUNT, [Canned(200, SUCCESS)], [send_request(sender=None)],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("DLT ids go in options.regional.indiaDlt",
             sms(to="+919876543210", dlt_entity_id="1201159100000012345",
                 dlt_template_id="1107160000000012345"), ACCOUNT, [Canned(200, SUCCESS)],
             [send_request(destinations=[{"to": "919876543210"}], options={"regional": {
                 "indiaDlt": {"principalEntityId": "1201159100000012345",
                              "contentTemplateId": "1107160000000012345"}}})],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("a DLT template without an entity id sends no indiaDlt (the entity is required)",
             sms(dlt_template_id="1107160000000012345"), ACCOUNT, [Canned(200, SUCCESS)],
             [send_request()], Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("no DLR URL at all: no webhooks object",
             MESSAGE, replace(ACCOUNT, webhook_url_dlr=""), [Canned(200, SUCCESS)],
             [send_request(webhooks=None)], Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("200 with a REJECTED status: rejected under the status name",
             MESSAGE, ACCOUNT, [rejected("REJECTED_DESTINATION", "Invalid destination")],
             [send_request()], Reject("REJECTED_DESTINATION", "Invalid destination")),
    SendCase("200 with REJECTED_NOT_ENOUGH_CREDITS: rejected, so failover can take it",
             MESSAGE, ACCOUNT, [rejected("REJECTED_NOT_ENOUGH_CREDITS", "Not enough credits")],
             [send_request()], Reject("REJECTED_NOT_ENOUGH_CREDITS", "Not enough credits")),
    SendCase("401 UNAUTHORIZED: rejected with Infobip's code and text",
             MESSAGE, ACCOUNT, [error(401, "UNAUTHORIZED", "Invalid login details")],
             [send_request()], Reject("UNAUTHORIZED", "Invalid login details")),
    SendCase("400 with validation errors: they are kept in the reason",
             MESSAGE, ACCOUNT,
             [Canned(400, request_error("BAD_REQUEST", "Bad request",
                                        {"messages[0].content.text": ["must not be blank"]}))],
             [send_request()],
             Reject("BAD_REQUEST", "Bad request; messages[0].content.text: must not be blank")),
    SendCase("400 in the ApiError shape: errorCode and description",
             MESSAGE, ACCOUNT,
             [Canned(400, {"errorCode": "E400", "description": "Request cannot be processed.",
                           "action": "Check the syntax, violations and adjust the request.",
                           "violations": [{"property": "messages[0].destinations",
                                           "violation": "must not be empty"}],
                           "resources": []})],
             [send_request()], Reject("E400", "Request cannot be processed.")),
    SendCase("403 without a body: rejected under the HTTP status",
             MESSAGE, ACCOUNT, [Canned(403, "")], [send_request()],
             Reject("http_403", "Forbidden")),
    SendCase("429 TOO_MANY_REQUESTS with Retry-After seconds: retried after them",
             MESSAGE, ACCOUNT, [error(429, "TOO_MANY_REQUESTS", "Too many requests",
                                      Retry_After="4")],
             [send_request()], Retry("TOO_MANY_REQUESTS", "Too many requests", 4.0)),
    SendCase("429 with an HTTP-date Retry-After: read against the pipeline's clock",
             MESSAGE, ACCOUNT, [error(429, "TOO_MANY_REQUESTS", "Too many requests",
                                      Retry_After="Tue, 24 Nov 2026 12:00:30 GMT")],
             [send_request()], Retry("TOO_MANY_REQUESTS", "Too many requests", 30.0)),
    SendCase("500 GENERAL_ERROR: retried with Infobip's code",
             MESSAGE, ACCOUNT, [error(500, "GENERAL_ERROR", "Something went wrong.")],
             [send_request()], Retry("GENERAL_ERROR", "Something went wrong.")),
    SendCase("502 with an HTML body: retried under the HTTP status",
             MESSAGE, ACCOUNT, [Canned(502, "<html>Bad Gateway</html>")], [send_request()],
             Retry("http_502", "<html>Bad Gateway</html>")),
    SendCase("200 that is not JSON: rejected as malformed, never retried",
             MESSAGE, ACCOUNT, [Canned(200, "<html>ok</html>")], [send_request()],
             Reject("malformed_response", "HTTP 200 without a messageId: <html>ok</html>")),
    SendCase("200 without messages: rejected as malformed",
             MESSAGE, ACCOUNT, [Canned(200, {"bulkId": BULK_ID, "messages": []})],
             [send_request()],
             Reject("malformed_response",
                    'HTTP 200 without a messageId: {"bulkId":"2034072219640523072",'
                    '"messages":[]}')),
    SendCase("read timeout: retried",
             MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [send_request()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection reset: retried",
             MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)], [send_request()],
             Retry("transport_error", "ConnectError: connection reset by peer")),
    SendCase("an error text quoting the API key is redacted",
             MESSAGE, ACCOUNT, [error(401, "UNAUTHORIZED", f"Invalid key {API_KEY}")],
             [send_request()], Reject("UNAUTHORIZED", "Invalid key [redacted]")),
    SendCase("credentials that no longer validate: rejected without a request",
             MESSAGE, replace(ACCOUNT, credentials={"api_key": "short"}), [], [],
             Reject("invalid_credentials",
                    "api_key: String should match pattern '^[A-Za-z0-9-]{20,200}$'")),
    SendCase("a config without base_url: rejected without a request",
             MESSAGE, replace(ACCOUNT, config={}), [], [],
             Reject("invalid_config", "base_url: Field required")),
]


def webhook(body: Any, *, token: str | None = TOKEN, url: str = DLR_URL) -> WebhookRequest:
    base = url.split("?", 1)[0]
    query = {"token": token} if token is not None else {}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(method="POST", url=base + (f"?token={token}" if token else ""),
                          headers={"Content-Type": "application/json"}, query=query, body=raw)


def report(group: str = "DELIVERED", name: str = "DELIVERED_TO_HANDSET", *,
           message_id: str = MESSAGE_ID, error_id: int = 0, error_name: str = "NO_ERROR",
           error_description: str = "No Error", **extra: Any) -> dict[str, Any]:
    """A delivery report as Infobip's client library test replays it."""
    return {
        "bulkId": BULK_ID, "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {"groupId": 3, "groupName": group, "id": 5, "name": name,
                   "description": "Message delivered to handset"},
        "error": {"groupId": 0, "groupName": "OK", "id": error_id, "name": error_name,
                  "description": error_description, "permanent": False},
        "messageId": message_id, "to": "41793026727", "sender": "InfoSMS",
        "sentAt": "2023-08-01T16:10:00+05:30", "doneAt": "2023-08-01T16:10:00+05:30",
        "messageCount": 1, **extra,
    }


def results(*reports: dict[str, Any]) -> dict[str, Any]:
    return {"results": list(reports)}


DONE = datetime(2023, 8, 1, 16, 10, tzinfo=timezone(timedelta(hours=5, minutes=30)))
INBOUND = inbound_body(message_id="817790313235066447", from_="385916242493", to="385921004026",
                       text="QUIZ Correct answer is Paris",
                       received_at="2023-08-01T16:10:00.000+0000")

WEBHOOK_CASES = [
    WebhookCase("delivered to handset", webhook(results(report())), ACCOUNT,
                [StatusUpdate(MESSAGE_ID, MessageState.DELIVERED, "DELIVERED_TO_HANDSET",
                              occurred_at=DONE)]),
    WebhookCase("delivered to operator only: sent, not delivered",
                webhook(results(report(name="DELIVERED_TO_OPERATOR"))), ACCOUNT,
                [StatusUpdate(MESSAGE_ID, MessageState.SENT, "DELIVERED_TO_OPERATOR",
                              occurred_at=DONE)]),
    WebhookCase("pending enroute: sent",
                webhook(results(report("PENDING", "PENDING_ENROUTE"))), ACCOUNT,
                [StatusUpdate(MESSAGE_ID, MessageState.SENT, "PENDING_ENROUTE",
                              occurred_at=DONE)]),
    WebhookCase("undeliverable keeps the error id, name and description",
                webhook(results(report("UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED",
                                       error_id=1, error_name="EC_UNKNOWN_SUBSCRIBER",
                                       error_description="Unknown Subscriber"))), ACCOUNT,
                [StatusUpdate(MESSAGE_ID, MessageState.FAILED, "UNDELIVERABLE_NOT_DELIVERED",
                              error_code="1",
                              error_detail="EC_UNKNOWN_SUBSCRIBER: Unknown Subscriber",
                              occurred_at=DONE)]),
    WebhookCase("expired and rejected are failed, in body order",
                webhook(results(report("EXPIRED", "EXPIRED_EXPIRED", message_id="m1"),
                                report("REJECTED", "REJECTED_NETWORK", message_id="m2"))),
                ACCOUNT,
                [StatusUpdate("m1", MessageState.FAILED, "EXPIRED_EXPIRED", occurred_at=DONE),
                 StatusUpdate("m2", MessageState.FAILED, "REJECTED_NETWORK",
                              occurred_at=DONE)]),
    WebhookCase("an unknown group is recorded, not guessed",
                webhook(results(report("SOMETHING_NEW", "NEW_THING"))), ACCOUNT,
                [UnknownStatus(MESSAGE_ID, "NEW_THING")]),
    WebhookCase("the +0000 form of doneAt is read",
                webhook(results(report(doneAt="2019-11-09T16:00:00.000+0000"))), ACCOUNT,
                [StatusUpdate(MESSAGE_ID, MessageState.DELIVERED, "DELIVERED_TO_HANDSET",
                              occurred_at=datetime(2019, 11, 9, 16, tzinfo=UTC))]),
    WebhookCase("an unreadable doneAt gives no time",
                webhook(results(report(doneAt="09/11/2019"))), ACCOUNT,
                [StatusUpdate(MESSAGE_ID, MessageState.DELIVERED, "DELIVERED_TO_HANDSET")]),
    WebhookCase("inbound SMS: numbers get their +",
                webhook(INBOUND, url=INBOUND_URL), ACCOUNT,
                [InboundMessage("817790313235066447", from_number="+385916242493",
                                to_number="+385921004026", text="QUIZ Correct answer is Paris",
                                received_at=datetime(2023, 8, 1, 16, 10, tzinfo=UTC))]),
    WebhookCase("inbound to a short code keeps it as it is",
                webhook(inbound_body(message_id="m9", from_="385916242493", to="13131",
                                     text="STOP"), url=INBOUND_URL), ACCOUNT,
                [InboundMessage("m9", from_number="+385916242493", to_number="13131",
                                text="STOP",
                                received_at=datetime(2026, 11, 24, 12, tzinfo=UTC))]),
    WebhookCase("empty results: nothing", webhook({"results": []}), ACCOUNT, []),
    WebhookCase("not JSON is a payload error", webhook(b"<reports/>"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("no results list is a payload error", webhook({"messageId": MESSAGE_ID}),
                ACCOUNT, WebhookPayloadError),
    WebhookCase("a report without messageId is a payload error",
                webhook(results(report(messageId=None))), ACCOUNT, WebhookPayloadError),
    WebhookCase("a status without groupName is a payload error",
                webhook(results(report(status={"id": 5}))), ACCOUNT, WebhookPayloadError),
    WebhookCase("an entry that is neither report nor inbound is a payload error",
                webhook(results({"messageId": MESSAGE_ID, "to": "41793026727"})), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing token is refused", webhook(results(report()), token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong token is refused", webhook(results(report()), token="guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("an account without a token refuses everything",
                webhook(results(report()), token="x"), replace(ACCOUNT, webhook_token=""),
                WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(infobip, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(infobip, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_forged_webhooks_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(infobip, case)


# --- the per-account base URL --------------------------------------------------------------------


async def hosts_called(account: AccountContext) -> list[str]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.scheme}://{request.url.netloc.decode()}")
        return httpx.Response(200, json=SUCCESS)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await infobip.send(MESSAGE, account, http, now=NOW)
    return seen


async def test_without_an_override_requests_go_to_the_accounts_own_host() -> None:
    assert await hosts_called(ACCOUNT) == [HOST]


async def test_the_operators_override_wins_over_the_accounts_host() -> None:
    overridden = replace(ACCOUNT, base_url="http://127.0.0.1:9010/")
    assert await hosts_called(overridden) == ["http://127.0.0.1:9010"]


@pytest.mark.parametrize("url", [
    "https://e1zz23.api.infobip.com", "https://E1ZZ23.api.infobip.com/",
    "https://my-company.api.infobip.com",
])
def test_config_accepts_an_infobip_host(url: str) -> None:
    assert infobip.Config.model_validate({"base_url": url}).base_url == url.lower().rstrip("/")


@pytest.mark.parametrize("config", [
    pytest.param({}, id="missing"),
    pytest.param({"base_url": "e1zz23.api.infobip.com"}, id="no-scheme"),
    pytest.param({"base_url": "http://e1zz23.api.infobip.com"}, id="plain-http"),
    pytest.param({"base_url": "https://api.infobip.com"}, id="shared-host-not-an-account"),
    pytest.param({"base_url": "https://e1zz23.api.infobip.com.evil.test"}, id="other-domain"),
    pytest.param({"base_url": "https://evil.test/x.api.infobip.com"}, id="host-in-path"),
    pytest.param({"base_url": "https://user@e1zz23.api.infobip.com"}, id="user-info"),
    pytest.param({"base_url": "https://e1zz23.api.infobip.com:8443"}, id="port"),
    pytest.param({"base_url": "https://e1zz23.api.infobip.com/sms"}, id="path"),
    pytest.param({"base_url": "https://e1zz23.api.infobip.com?x=1"}, id="query"),
    pytest.param({"base_url": HOST, "sender": "InfoSMS"}, id="unknown-field"),
])
def test_config_refuses(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        infobip.Config.model_validate(config)


@pytest.mark.parametrize("credentials", [
    pytest.param({"api_key": API_KEY}, id="portal-key"),
    pytest.param({"api_key": "a" * 200}, id="longest"),
])
def test_credentials_accepted(credentials: dict[str, str]) -> None:
    infobip.Credentials.model_validate(credentials)


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"api_key": "abc123"}, id="too-short"),
    pytest.param({"api_key": "App " + API_KEY}, id="with-scheme"),
    pytest.param({"api_key": API_KEY + "\n"}, id="line-break"),
    pytest.param({"api_key": API_KEY, "base_url": HOST}, id="base-url-belongs-in-config"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        infobip.Credentials.model_validate(credentials)


# --- balance and sender names --------------------------------------------------------------------


async def query(handler: Any, call: Any, account: AccountContext = ACCOUNT) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await call(account, http)


async def test_balance_is_kept_verbatim_with_its_currency() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b'{"balance":47.79130,"currency":"EUR"}')

    assert await query(handler, infobip.balance) == Balance("47.79130", "EUR")
    [request] = seen
    assert (request.method, str(request.url)) == ("GET", f"{HOST}/account/1/balance")
    assert request.headers["authorization"] == f"App {API_KEY}"


@pytest.mark.parametrize(("answer", "failure"), [
    (httpx.Response(401, json=request_error("UNAUTHORIZED", "Invalid login details")),
     Reject("UNAUTHORIZED", "Invalid login details")),
    (httpx.Response(503, text="busy", headers={"Retry-After": "5"}),
     Retry("http_503", "busy", 5.0)),
    (httpx.Response(200, json={"currency": "EUR"}),
     Reject("malformed_response", "the balance answer has no balance")),
    (httpx.Response(200, text="<html/>"),
     Reject("malformed_response", "/account/1/balance answered no JSON object")),
], ids=["401", "503", "no-balance", "not-json"])
async def test_balance_failures_raise_provider_error(answer: httpx.Response,
                                                     failure: Retry | Reject) -> None:
    with pytest.raises(ProviderError) as raised:
        await query(lambda request: answer, infobip.balance)
    assert raised.value.failure == failure


async def test_balance_transport_error_leaks_neither_url_nor_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with pytest.raises(ProviderError) as raised:
        await query(handler, infobip.balance)
    assert raised.value.failure == Retry("transport_error", "ConnectError: cannot reach [url]")
    assert API_KEY not in str(raised.value)


async def test_sender_names_are_the_sms_numbers_in_either_answer_shape() -> None:
    answers = iter([
        {"numbers": [{"numberKey": "A1", "number": "447860041117", "capabilities": ["SMS"]},
                     {"numberKey": "A2", "number": "447860041118", "capabilities": ["VOICE"]}],
         "numberCount": 2},
        {"results": [{"numberId": "num-1", "phoneNumber": "+12025551234",
                      "capabilities": {"sms": True, "voice": True}},
                     {"numberId": "num-2", "phoneNumber": "+12025555678",
                      "capabilities": {"sms": False}}],
         "page": 0, "pageSize": 20, "totalResults": 2},
    ])
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json=next(answers))

    assert await query(handler, infobip.sender_names) == ["447860041117"]
    assert await query(handler, infobip.sender_names) == ["+12025551234"]
    assert paths == ["/numbers/1/numbers", "/numbers/1/numbers"]


async def test_sender_names_failure_raises_provider_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json=request_error("FORBIDDEN", "Forbidden access"))

    with pytest.raises(ProviderError) as raised:
        await query(handler, infobip.sender_names)
    assert raised.value.failure == Reject("FORBIDDEN", "Forbidden access")


# --- against the fake, over a real socket --------------------------------------------------------


class Receiver:
    """A gateway stand-in: verifies each webhook with the module, then parses it."""

    def __init__(self, account: AccountContext) -> None:
        self.account = account
        self.events: list[WebhookEvent] = []
        self.posts = 0
        self.refused = 0
        self.fail_first = 0
        self.app = Starlette(routes=[Route("/{kind}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response("restarting", 503)
        self.posts += 1
        webhook = WebhookRequest("POST", str(request.url), dict(request.headers),
                                 dict(request.query_params), await request.body())
        try:
            infobip.verify_webhook(webhook, self.account)
        except WebhookVerificationError:
            self.refused += 1
            return Response("forbidden", 403)
        self.events.extend(infobip.parse_webhook(webhook, self.account))
        return JSONResponse({"status": "ok"})


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.fixture
def served() -> Iterator[tuple[FakeInfobip, Receiver, AccountContext]]:
    fake = FakeInfobip([API_KEY], delivery_reports=True, report_retry_seconds=0.01,
                       balance="12.50000", keep_messages=True)
    receiver = Receiver(ACCOUNT)
    with serve_in_thread(fake.app) as api, serve_in_thread(receiver.app) as gateway:
        account = replace(ACCOUNT, base_url=api,  # the operator's override points at the fake
                          webhook_url_dlr=f"{gateway}/dlr?token={TOKEN}",
                          webhook_url_inbound=f"{gateway}/inbound?token={TOKEN}")
        receiver.account = account
        yield fake, receiver, account


async def test_module_and_fake_agree_on_sends_and_delivery_reports(
    served: tuple[FakeInfobip, Receiver, AccountContext],
) -> None:
    fake, receiver, account = served
    fake.script_delivery("41793026799")
    async with httpx.AsyncClient() as http:
        first = await infobip.send(MESSAGE, account, http, now=NOW)
        second = await infobip.send(sms(to="+41793026799"), account, http, now=NOW)
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert [s.message_id for s in fake.sends] == [*first.provider_ids, *second.provider_ids]
    assert fake.sends[0].message == send_request(
        webhooks={"delivery": {"url": account.webhook_url_dlr},
                  "contentType": "application/json"}).json["messages"][0]

    await wait_for(lambda: len(receiver.events) == 2)
    assert receiver.refused == 0
    states = {e.provider_message_id: (e.state, e.provider_status, e.error_code)
              for e in receiver.events if isinstance(e, StatusUpdate)}
    assert states == {
        first.provider_ids[0]: (MessageState.DELIVERED, "DELIVERED_TO_HANDSET", None),
        second.provider_ids[0]: (MessageState.FAILED, "UNDELIVERABLE_NOT_DELIVERED", "1"),
    }


async def test_fake_retries_reports_while_the_gateway_restarts(
    served: tuple[FakeInfobip, Receiver, AccountContext],
) -> None:
    fake, receiver, account = served
    receiver.fail_first = 2
    async with httpx.AsyncClient() as http:
        outcome = await infobip.send(MESSAGE, account, http, now=NOW)
    # The fake records a report once its POST has been answered, just after the receiver saw it.
    await wait_for(lambda: len(receiver.events) == 1 and len(fake.reports) == 1)
    assert isinstance(outcome, Accepted)
    assert fake.reports[0].attempts == 3


async def test_many_concurrent_sends_are_all_reported_in_batches(
    served: tuple[FakeInfobip, Receiver, AccountContext],
) -> None:
    fake, receiver, account = served
    async with httpx.AsyncClient() as http:
        outcomes = await asyncio.gather(*(
            infobip.send(sms(to=f"+4179302{n:04d}"), account, http, now=NOW)
            for n in range(200)))
    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    await wait_for(lambda: len(receiver.events) == 200)
    assert {e.provider_message_id for e in receiver.events} == {s.message_id
                                                                for s in fake.sends}
    assert receiver.posts < 200  # several reports share a POST, as Infobip's do


async def test_fake_answers_infobips_errors_and_scripted_failures(
    served: tuple[FakeInfobip, Receiver, AccountContext],
) -> None:
    fake, _, account = served
    wrong_key = replace(account, credentials={"api_key": "x" * 40})
    fake.fail_next(1, 429, headers={"Retry-After": "3"})
    fake.fail_next(1, 500)
    async with httpx.AsyncClient() as http:
        outcomes = [
            await infobip.send(MESSAGE, account, http, now=NOW),
            await infobip.send(MESSAGE, account, http, now=NOW),
            await infobip.send(MESSAGE, wrong_key, http, now=NOW),
            await infobip.send(sms(text=""), account, http, now=NOW),
            await infobip.send(sms(to="+4179"), account, http, now=NOW),
        ]
        fake.malformed_next()
        outcomes.append(await infobip.send(MESSAGE, account, http, now=NOW))
    assert outcomes == [
        Retry("TOO_MANY_REQUESTS", "Too many requests", 3.0),
        Retry("GENERAL_ERROR", "Something went wrong. Please contact support."),
        Reject("UNAUTHORIZED", "Invalid login details"),
        Reject("BAD_REQUEST", "Bad request; messages[0].content.text: must not be blank"),
        Reject("REJECTED_DESTINATION", "Invalid destination"),
        Reject("malformed_response", "HTTP 200 without a messageId: <html>Bad Gateway</html>"),
    ]
    assert fake.sends == []
    assert len(fake.requests) == 6


async def test_balance_sender_names_and_inbound_against_the_fake(
    served: tuple[FakeInfobip, Receiver, AccountContext],
) -> None:
    _, receiver, account = served
    async with httpx.AsyncClient() as http:
        assert await infobip.balance(account, http) == Balance("12.50000", "EUR")
        assert await infobip.sender_names(account, http) == ["447860041117"]
        response = await http.post(account.webhook_url_inbound, json=INBOUND)
        with pytest.raises(ProviderError) as raised:
            await infobip.balance(replace(account, credentials={"api_key": "y" * 40}), http)
    assert response.status_code == 200
    assert raised.value.failure == Reject("UNAUTHORIZED", "Invalid login details")
    assert [e for e in receiver.events if isinstance(e, InboundMessage)] == [InboundMessage(
        "817790313235066447", from_number="+385916242493", to_number="+385921004026",
        text="QUIZ Correct answer is Paris",
        received_at=datetime(2023, 8, 1, 16, 10, tzinfo=UTC))]


async def test_fake_without_recording_keeps_only_the_count() -> None:
    fake = FakeInfobip([API_KEY], record=False)
    with serve_in_thread(fake.app) as api:
        async with httpx.AsyncClient() as http:
            outcomes = [await infobip.send(MESSAGE, replace(ACCOUNT, base_url=api), http,
                                           now=NOW) for _ in range(3)]
    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert (fake.taken, fake.sends, fake.requests) == (3, [], [])


def test_fake_runs_standalone() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.infobip", "--port", str(port), "--api-key", API_KEY,
         "--delivery-reports"],
        cwd=Path(__file__).resolve().parents[3], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/account/1/balance"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(url, headers={"Authorization": f"App {API_KEY}"})
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr and process.stderr.read()
                assert time.monotonic() < deadline, "the fake did not start"
                time.sleep(0.05)
        assert response.content == b'{"balance":47.79134,"currency":"EUR"}'
        denied = httpx.get(url, headers={"Authorization": "App wrong"})
        assert denied.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


_: SmsProvider = infobip
