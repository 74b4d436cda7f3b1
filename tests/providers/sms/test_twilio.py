"""Twilio: sends and webhooks as tables of wire shapes, then signature vectors, account queries
and credentials, then the module against the fake over a real loopback socket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import free_port, serve_in_thread
from tests.fakes.twilio import (
    FakeTwilio,
    inbound_params,
    post_inbound,
    signed_webhook,
    status_params,
    twilio_signature,
)
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
from tidings.providers.sms import twilio

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
SERVICE = "MG" + "fedcba9876543210" * 2
SM = "SM" + "a1" * 16
DLR_URL = "https://gw.example.com/v1/webhooks/twilio/acc_1/dlr"
INBOUND_URL = "https://gw.example.com/v1/webhooks/twilio/acc_1/inbound"
TO, FROM = "+14155550100", "+15005550006"

ACCOUNT = AccountContext(
    account_id="acc_1",
    base_url="https://api.twilio.com",
    credentials={"account_sid": SID, "auth_token": TOKEN},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound=INBOUND_URL,
    webhook_token="wh-token-unused-by-twilio",
)
THROUGH_SERVICE = replace(ACCOUNT, config={"messaging_service_sid": SERVICE})
MESSAGE = OutboundSms(
    message_id="msg_1", to=TO, sender_id=FROM, text="Your code is 1234", encoding="GSM-7",
    segments=1, dlt_entity_id=None, dlt_template_id=None, status_callback_url=None,
    idempotency_key="idem_1",
)

MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
AUTH = {"authorization": "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()}
FORM = {"To": TO, "From": FROM, "Body": "Your code is 1234", "StatusCallback": DLR_URL}


def create(**form: str) -> Expected:
    """The create request, with ``form`` overriding (an empty value removes a field)."""
    merged = {name: value for name, value in {**FORM, **form}.items() if value}
    return Expected("POST", MESSAGES, headers=AUTH, form=merged)


def created(**fields: Any) -> Canned:
    """Twilio's 201 answer: the Message resource as documented."""
    resource = {
        "account_sid": SID, "api_version": "2010-04-01", "body": "Your code is 1234",
        "date_created": "Tue, 24 Nov 2026 12:00:00 +0000", "date_sent": None,
        "date_updated": "Tue, 24 Nov 2026 12:00:00 +0000", "direction": "outbound-api",
        "error_code": None, "error_message": None, "from": FROM, "messaging_service_sid": None,
        "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD", "sid": SM,
        "status": "queued", "to": TO,
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{SID}/Messages/{SM}/Media.json"},
        "uri": f"/2010-04-01/Accounts/{SID}/Messages/{SM}.json",
        **fields,
    }
    return Canned(201, resource)


def raw(**fields: Any) -> dict[str, Any]:
    """What ``Accepted.raw`` keeps of ``created()``: no account SID, no URIs."""
    return {
        "sid": SM, "status": "queued", "num_segments": "1", "num_media": "0",
        "direction": "outbound-api", "date_created": "Tue, 24 Nov 2026 12:00:00 +0000",
        "messaging_service_sid": None, "price": None, "price_unit": "USD", "error_code": None,
        "error_message": None, **fields,
    }


def error(status: int, code: int, message: str, **headers: str) -> Canned:
    body = {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return Canned(status, body, headers={k.replace("_", "-"): v for k, v in headers.items()})


SEND_CASES = [
    SendCase("201 with From: accepted under the message sid",
             MESSAGE, ACCOUNT, [created()], [create()], Accepted((SM,), raw=raw())),
    SendCase("a Messaging Service in the config replaces From",
             MESSAGE, THROUGH_SERVICE,
             [created(status="accepted", num_segments="0", messaging_service_sid=SERVICE)],
             [create(From="", MessagingServiceSid=SERVICE)],
             Accepted((SM,), raw=raw(status="accepted", num_segments="0",
                                      messaging_service_sid=SERVICE))),
    SendCase("the message's own status callback URL wins over the account's",
             replace(MESSAGE, status_callback_url="https://tenant.example/cb?m=msg_1"), ACCOUNT,
             [created()], [create(StatusCallback="https://tenant.example/cb?m=msg_1")],
             Accepted((SM,), raw=raw())),
    SendCase("400 21211 invalid To: rejected with Twilio's code and words",
             MESSAGE, ACCOUNT, [error(400, 21211, "Invalid 'To' Phone Number: +1415555")],
             [create()], Reject("21211", "Invalid 'To' Phone Number: +1415555")),
    SendCase("401 20003 bad credentials: rejected",
             MESSAGE, ACCOUNT, [error(401, 20003, "Authenticate")], [create()],
             Reject("20003", "Authenticate")),
    SendCase("429 20429 with Retry-After seconds: retried after them",
             MESSAGE, ACCOUNT, [error(429, 20429, "Too Many Requests", Retry_After="7")],
             [create()], Retry("20429", "Too Many Requests", 7.0)),
    SendCase("429 with an HTTP-date Retry-After: read against the pipeline's clock",
             MESSAGE, ACCOUNT,
             [error(429, 20429, "Too Many Requests", Retry_After="Tue, 24 Nov 2026 12:01:00 GMT")],
             [create()], Retry("20429", "Too Many Requests", 60.0)),
    SendCase("code 20429 under a 400: still retried",
             MESSAGE, ACCOUNT, [error(400, 20429, "Too Many Requests", Retry_After="2")],
             [create()], Retry("20429", "Too Many Requests", 2.0)),
    SendCase("500 20500: retried",
             MESSAGE, ACCOUNT, [error(500, 20500, "An internal server error has occurred")],
             [create()], Retry("20500", "An internal server error has occurred")),
    SendCase("503 with a non-Twilio body: retried under the HTTP status",
             MESSAGE, ACCOUNT, [Canned(503, "<html>Service Unavailable</html>")], [create()],
             Retry("http_503", "<html>Service Unavailable</html>")),
    SendCase("503 20503 with Retry-After: retried after it",
             MESSAGE, ACCOUNT, [error(503, 20503, "Service Unavailable", Retry_After="30")],
             [create()], Retry("20503", "Service Unavailable", 30.0)),
    SendCase("201 without a sid: rejected as malformed, never retried",
             MESSAGE, ACCOUNT, [Canned(201, {"status": "queued"})], [create()],
             Reject("malformed_response", 'HTTP 201 without a message sid: {"status":"queued"}')),
    SendCase("201 that is not JSON: rejected as malformed",
             MESSAGE, ACCOUNT, [Canned(201, "<Response/>")], [create()],
             Reject("malformed_response", "HTTP 201 without a message sid: <Response/>")),
    SendCase("connection reset: retried",
             MESSAGE, ACCOUNT, [Canned(error=httpx.ReadError)], [create()],
             Retry("transport_error", "ReadError: connection reset by peer")),
    SendCase("read timeout: retried",
             MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [create()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("an error message quoting the auth token is redacted",
             MESSAGE, ACCOUNT, [error(400, 21211, f"Invalid 'To' Phone Number: {TOKEN}")],
             [create()], Reject("21211", "Invalid 'To' Phone Number: [redacted]")),
    SendCase("an error message quoting the account SID is redacted too",
             MESSAGE, ACCOUNT, [error(404, 20404, f"The requested resource {MESSAGES} was not "
                                                  "found")],
             [create()],
             Reject("20404", "The requested resource /2010-04-01/Accounts/[redacted]/"
                             "Messages.json was not found")),
    SendCase("no sender and no Messaging Service: rejected without a request",
             replace(MESSAGE, sender_id=None), ACCOUNT, [], [],
             Reject("missing_sender",
                    "Twilio needs a From number (sender_id) or a messaging_service_sid")),
    SendCase("stored credentials that no longer validate: rejected without a request",
             MESSAGE, replace(ACCOUNT, credentials={"account_sid": SID, "auth_token": "short"}),
             [], [],
             Reject("invalid_credentials",
                    "auth_token: String should match pattern '^[0-9a-fA-F]{32}$'")),
]


def webhook(params: Mapping[str, str], *, url: str = DLR_URL, signed_url: str | None = None,
            token: str = TOKEN, body: bytes | None = None) -> WebhookRequest:
    """A form POST as Twilio sends it to ``url``, signed over ``signed_url`` (default ``url``)
    with ``token``; ``body`` replaces the signed body (to tamper with it)."""
    headers, content = signed_webhook(signed_url or url, params, token)
    query = dict(parse_qsl(urlsplit(url).query))
    return WebhookRequest("POST", url, headers, query, content if body is None else body)


def status(word: str, **extra: str) -> dict[str, str]:
    return status_params(SM, word, account_sid=SID, to=TO, from_=FROM, **extra)


def update(state: MessageState, word: str, code: str | None = None,
           detail: str | None = None) -> list[WebhookEvent]:
    return [StatusUpdate(SM, state, word, error_code=code, error_detail=detail)]


def json_webhook(payload: dict[str, Any], *, body: bytes | None = None) -> WebhookRequest:
    """A JSON POST: Twilio signs the URL alone, with the body's SHA-256 in ``bodySHA256``."""
    content = json.dumps(payload).encode()
    url = f"{DLR_URL}?bodySHA256={hashlib.sha256(content).hexdigest()}"
    headers = {"Content-Type": "application/json",
               "X-Twilio-Signature": twilio_signature(url, {}, TOKEN)}
    return WebhookRequest("POST", url, headers, dict(parse_qsl(urlsplit(url).query)),
                          content if body is None else body)


SENT, DELIVERED, READ, FAILED = (MessageState.SENT, MessageState.DELIVERED, MessageState.READ,
                                 MessageState.FAILED)
INBOUND = inbound_params(account_sid=SID, from_=TO, to=FROM, body="STOP", message_sid=SM)

WEBHOOK_CASES = [
    *(WebhookCase(f"{word}: sent", webhook(status(word)), ACCOUNT, update(SENT, word))
      for word in ("accepted", "scheduled", "queued", "sending", "sent")),
    WebhookCase("delivered", webhook(status("delivered")), ACCOUNT, update(DELIVERED, "delivered")),
    WebhookCase("read", webhook(status("read")), ACCOUNT, update(READ, "read")),
    WebhookCase("failed with ErrorCode 30008", webhook(status("failed", error_code="30008")),
                ACCOUNT, update(FAILED, "failed", "30008")),
    WebhookCase("undelivered with ErrorCode and ErrorMessage",
                webhook(status("undelivered", error_code="30003",
                               error_message="Unreachable destination handset")),
                ACCOUNT, update(FAILED, "undelivered", "30003", "Unreachable destination handset")),
    WebhookCase("canceled: failed", webhook(status("canceled")), ACCOUNT,
                update(FAILED, "canceled")),
    WebhookCase("an unknown word is kept, not guessed",
                webhook(status("partially_delivered")), ACCOUNT,
                [UnknownStatus(SM, "partially_delivered")]),
    WebhookCase("inbound SMS (SmsStatus=received)", webhook(INBOUND, url=INBOUND_URL), ACCOUNT,
                [InboundMessage(SM, from_number=TO, to_number=FROM, text="STOP")]),
    WebhookCase("inbound without any status word but with a Body",
                webhook({"MessageSid": SM, "From": TO, "To": FROM, "Body": "hi there"},
                        url=INBOUND_URL),
                ACCOUNT, [InboundMessage(SM, from_number=TO, to_number=FROM, text="hi there")]),
    WebhookCase("signed with :443 while the route sees no port",
                webhook(status("delivered"),
                        signed_url=DLR_URL.replace("example.com", "example.com:443")),
                ACCOUNT, update(DELIVERED, "delivered")),
    WebhookCase("signed without a port while the route sees :443",
                webhook(status("delivered"), url=DLR_URL.replace("example.com", "example.com:443"),
                        signed_url=DLR_URL),
                ACCOUNT, update(DELIVERED, "delivered")),
    WebhookCase("the query string is part of what is signed",
                webhook(status("sent"), url=DLR_URL + "?tenant=t_1&attempt=2"),
                ACCOUNT, update(SENT, "sent")),
    WebhookCase("a JSON body is covered by bodySHA256",
                json_webhook({"MessageSid": SM, "MessageStatus": "delivered", "ErrorCode": None}),
                ACCOUNT, update(DELIVERED, "delivered")),
    WebhookCase("signed with another auth token: refused",
                webhook(status("delivered"), token="0" * 32), ACCOUNT, WebhookVerificationError),
    WebhookCase("signed for another URL: refused",
                webhook(status("delivered"), signed_url=INBOUND_URL), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("body changed after signing: refused",
                webhook(status("failed"), body=webhook(status("delivered")).body), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("JSON body that does not match bodySHA256: refused",
                json_webhook({"MessageSid": SM, "MessageStatus": "failed"},
                             body=b'{"MessageSid": "SMx", "MessageStatus": "delivered"}'),
                ACCOUNT, WebhookVerificationError),
    WebhookCase("no X-Twilio-Signature: refused",
                replace(webhook(status("sent")), headers={"content-type": "text/plain"}),
                ACCOUNT, WebhookVerificationError),
    WebhookCase("signed but without MessageSid: payload error",
                webhook({"MessageStatus": "delivered", "To": TO}), ACCOUNT, WebhookPayloadError),
    WebhookCase("signed but neither a status word nor a Body: payload error",
                webhook({"MessageSid": SM, "To": TO}), ACCOUNT, WebhookPayloadError),
    WebhookCase("inbound without From: payload error",
                webhook({"MessageSid": SM, "To": FROM, "Body": "x"}, url=INBOUND_URL), ACCOUNT,
                WebhookPayloadError),
]


@pytest.fixture(autouse=True)
def _httpx_request_lines_off() -> Iterator[None]:
    """httpx logs each request line at INFO, and Twilio URLs carry the account SID, which
    ``AccountContext.secrets()`` (and so the harness) counts as a credential. The module itself
    logs nothing; the application decides whether httpx's own lines are logged."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(twilio, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(twilio, case)


@pytest.mark.parametrize("case", [c for c in WEBHOOK_CASES if not isinstance(c.events, type)],
                         ids=lambda case: case.label)
def test_forged_webhooks_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(twilio, case)


# --- signatures: Twilio's own published vectors --------------------------------------------------

# From twilio-python's request validator tests (token "12345"): the same inputs must verify here.
SDK_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
SDK_PARAMS = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212", "Caller": "+14158675309"}
SDK_JSON = b'{"property": "value", "boolean": true}'
SDK_JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
SDK_VECTORS = [
    ("signature over URL and sorted params", SDK_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ("a non-default port is dropped", SDK_URL.replace(".com", ".com:1234"),
     "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ("https signed with :443 made explicit", SDK_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
    ("http signed with :80 made explicit", SDK_URL.replace("https", "http"),
     "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ("http with a port, signed with it", SDK_URL.replace(".com", ".com:1234")
     .replace("https", "http"), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
]


@pytest.mark.parametrize(("label", "url", "signature"), SDK_VECTORS,
                         ids=[v[0] for v in SDK_VECTORS])
def test_sdk_signature_vectors_verify(label: str, url: str, signature: str) -> None:
    account = replace(ACCOUNT, credentials={"account_sid": SID, "auth_token": "12345"})
    request = WebhookRequest("POST", url, {"X-Twilio-Signature": signature},
                             dict(parse_qsl(urlsplit(url).query)), urlencode(SDK_PARAMS).encode())
    twilio.verify_webhook(request, account)


def test_sdk_json_body_vector_verifies() -> None:
    account = replace(ACCOUNT, credentials={"account_sid": SID, "auth_token": "12345"})
    url = f"{SDK_URL}&bodySHA256={SDK_JSON_HASH}"
    request = WebhookRequest("POST", url, {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4=",
                                           "Content-Type": "application/json"},
                             dict(parse_qsl(urlsplit(url).query)), SDK_JSON)
    twilio.verify_webhook(request, account)


def test_fake_signs_as_the_sdk_vectors_say() -> None:
    assert twilio_signature(SDK_URL, SDK_PARAMS, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_repeated_parameters_are_signed_sorted_by_value() -> None:
    params = [("MediaUrl", "https://b.example/2"), ("MessageSid", SM), ("MessageStatus", "sent"),
              ("MediaUrl", "https://a.example/1")]
    headers, body = signed_webhook(DLR_URL, params, TOKEN)
    twilio.verify_webhook(WebhookRequest("POST", DLR_URL, headers, {}, body), ACCOUNT)


def test_webhook_ack_is_empty_twiml() -> None:
    assert twilio.webhook_ack.media_type == "text/xml"
    assert twilio.webhook_ack.body == (
        b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>')


# --- account queries -----------------------------------------------------------------------------


def mock_client(*answers: httpx.Response | type[httpx.TransportError],
                seen: list[httpx.Request] | None = None) -> httpx.AsyncClient:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, type):
            raise answer("connection refused", request=request)
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def twilio_error(status: int, code: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={
        "code": code, "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})


def numbers_page(numbers: list[str], next_page_uri: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={
        "incoming_phone_numbers": [{"sid": f"PN{i:032x}", "phone_number": n}
                                   for i, n in enumerate(numbers)],
        "next_page_uri": next_page_uri, "page": 0, "page_size": 1000})


async def test_balance_reads_amount_and_currency_verbatim() -> None:
    seen: list[httpx.Request] = []
    answer = httpx.Response(200, json={"currency": "USD", "balance": "12.3400",
                                       "account_sid": SID})
    async with mock_client(answer, seen=seen) as http:
        assert await twilio.balance(ACCOUNT, http) == Balance("12.3400", "USD")
    assert seen[0].method == "GET"
    assert str(seen[0].url) == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Balance.json"
    assert seen[0].headers["authorization"] == AUTH["authorization"]


@pytest.mark.parametrize(("answer", "failure"), [
    (twilio_error(401, 20003, "Authenticate"), Reject("20003", "Authenticate")),
    (twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "5"}),
     Retry("20429", "Too Many Requests", 5.0)),
    (twilio_error(503, 20503, "Service Unavailable", **{
        "Retry-After": "Tue, 24 Nov 2026 12:00:30 GMT", "Date": "Tue, 24 Nov 2026 12:00:00 GMT"}),
     Retry("20503", "Service Unavailable", 30.0)),
    (twilio_error(503, 20503, "Service Unavailable",
                  **{"Retry-After": "Tue, 24 Nov 2026 12:00:30 GMT"}),
     Retry("20503", "Service Unavailable", None)),
    (httpx.Response(200, json={"currency": "USD"}),
     Reject("malformed_response", "Balance.json answered no balance")),
    (httpx.Response(200, text="<html/>"),
     Reject("malformed_response", "Balance.json answered no JSON object")),
    (httpx.ConnectError, Retry("transport_error", "ConnectError: connection refused")),
], ids=["401", "429", "503 HTTP-date against Date", "503 HTTP-date without Date", "no balance",
        "not JSON", "connect error"])
async def test_balance_failures_raise_provider_error(
    answer: httpx.Response | type[httpx.TransportError], failure: Retry | Reject
) -> None:
    async with mock_client(answer) as http:
        with pytest.raises(ProviderError) as raised:
            await twilio.balance(ACCOUNT, http)
    assert raised.value.failure == failure


async def test_sender_names_lists_phone_numbers_across_pages() -> None:
    seen: list[httpx.Request] = []
    next_uri = f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json?PageSize=1000&Page=1"
    async with mock_client(numbers_page(["+15005550006", "+15005550007"], next_uri),
                           numbers_page(["+447700900123"]), seen=seen) as http:
        names = await twilio.sender_names(ACCOUNT, http)
    assert names == ["+15005550006", "+15005550007", "+447700900123"]
    assert [(r.url.path, dict(r.url.params)) for r in seen] == [
        (f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json", {"PageSize": "1000"}),
        (f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json", {"PageSize": "1000",
                                                                   "Page": "1"}),
    ]


async def test_sender_names_error_raises_provider_error_with_twilios_code() -> None:
    async with mock_client(twilio_error(401, 20003, "Authenticate")) as http:
        with pytest.raises(ProviderError) as raised:
            await twilio.sender_names(ACCOUNT, http)
    assert raised.value.failure == Reject("20003", "Authenticate")


# --- credentials and config ----------------------------------------------------------------------

VALID_CREDENTIALS = {"account_sid": SID, "auth_token": TOKEN}
INVALID_CREDENTIALS = [
    ("SID without the AC prefix", {**VALID_CREDENTIALS, "account_sid": "SK" + SID[2:]}),
    ("SID one digit short", {**VALID_CREDENTIALS, "account_sid": SID[:-1]}),
    ("SID in upper-case hex", {**VALID_CREDENTIALS, "account_sid": "AC" + SID[2:].upper()}),
    ("SID with a trailing space", {**VALID_CREDENTIALS, "account_sid": SID + " "}),
    ("empty auth token", {**VALID_CREDENTIALS, "auth_token": ""}),
    ("auth token that is not 32 hex digits", {**VALID_CREDENTIALS, "auth_token": "x" * 32}),
    ("auth token missing", {"account_sid": SID}),
    ("an unknown key", {**VALID_CREDENTIALS, "api_key": "SK123"}),
]


def test_credentials_accept_a_sid_and_token_as_twilio_issues_them() -> None:
    assert twilio.Credentials.model_validate(VALID_CREDENTIALS).account_sid == SID


@pytest.mark.parametrize("values", [c[1] for c in INVALID_CREDENTIALS],
                         ids=[c[0] for c in INVALID_CREDENTIALS])
def test_credentials_reject(values: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        twilio.Credentials.model_validate(values)


@pytest.mark.parametrize("values", [{}, {"messaging_service_sid": SERVICE},
                                    {"messaging_service_sid": None}],
                         ids=["empty", "a Messaging Service", "explicit null"])
def test_config_accepts(values: dict[str, Any]) -> None:
    twilio.Config.model_validate(values)


@pytest.mark.parametrize("values", [{"messaging_service_sid": "MG123"},
                                    {"messaging_service_sid": SID},
                                    {"from": FROM}],
                         ids=["short MG sid", "an account sid", "an unknown key"])
def test_config_rejects(values: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        twilio.Config.model_validate(values)


# --- the module against the fake, over loopback ---------------------------------------------------


class Receiver:
    """A gateway stand-in: verifies each webhook with the module, then parses it."""

    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []
        self.refused = 0
        self.fail_first = 0
        self.app = Starlette(routes=[Route("/{kind}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response("restarting", 503)
        webhook = WebhookRequest("POST", str(request.url), dict(request.headers),
                                 dict(request.query_params), await request.body())
        try:
            twilio.verify_webhook(webhook, ACCOUNT)
        except WebhookVerificationError:
            self.refused += 1
            return Response("forbidden", 403)
        self.events.extend(twilio.parse_webhook(webhook, ACCOUNT))
        return Response(twilio.webhook_ack.body, media_type=twilio.webhook_ack.media_type)


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.fixture
def served() -> Iterator[tuple[FakeTwilio, Receiver, AccountContext]]:
    fake = FakeTwilio({SID: TOKEN}, status_callbacks=True, callback_retry_seconds=0.01,
                      numbers=["+15005550006", "+15005550007"], balance="7.50")
    receiver = Receiver()
    with serve_in_thread(fake.app) as api, serve_in_thread(receiver.app) as gateway:
        account = replace(ACCOUNT, base_url=api, webhook_url_dlr=f"{gateway}/dlr",
                          webhook_url_inbound=f"{gateway}/inbound")
        yield fake, receiver, account


async def test_module_and_fake_agree_on_sends_and_signed_status_callbacks(
    served: tuple[FakeTwilio, Receiver, AccountContext],
) -> None:
    fake, receiver, account = served
    fake.script_delivery("+14155550199", "undelivered", "30003", "Unreachable destination handset")
    async with httpx.AsyncClient() as http:
        first = await twilio.send(MESSAGE, account, http, now=NOW)
        second = await twilio.send(replace(MESSAGE, to="+14155550199"), account, http, now=NOW)
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert [m.sid for m in fake.messages] == [*first.provider_ids, *second.provider_ids]
    assert fake.messages[0].form == {**FORM, "StatusCallback": account.webhook_url_dlr}
    assert first.raw is not None
    assert first.raw["status"] == "queued"

    await wait_for(lambda: len(receiver.events) == 4)
    assert receiver.refused == 0
    by_message: dict[str, list[tuple[MessageState, str | None]]] = {}
    for event in receiver.events:
        assert isinstance(event, StatusUpdate)
        by_message.setdefault(event.provider_message_id, []).append(
            (event.state, event.error_code))
    assert by_message == {
        first.provider_ids[0]: [(SENT, None), (DELIVERED, None)],
        second.provider_ids[0]: [(SENT, None), (FAILED, "30003")],
    }
    async with httpx.AsyncClient(auth=(SID, TOKEN)) as http:
        fetched = await http.get(f"{account.base_url}/2010-04-01/Accounts/{SID}/Messages/"
                                 f"{second.provider_ids[0]}.json")
    assert (fetched.json()["status"], fetched.json()["to"]) == ("undelivered", "+14155550199")


async def test_fake_retries_a_callback_while_the_gateway_restarts(
    served: tuple[FakeTwilio, Receiver, AccountContext],
) -> None:
    fake, receiver, account = served
    receiver.fail_first = 2
    async with httpx.AsyncClient() as http:
        outcome = await twilio.send(MESSAGE, account, http, now=NOW)
    await wait_for(lambda: len(receiver.events) == 2)
    assert isinstance(outcome, Accepted)
    assert [e.state for e in receiver.events if isinstance(e, StatusUpdate)] == [SENT, DELIVERED]
    assert fake.callbacks[0].attempts == 3


async def test_fake_answers_twilios_errors_and_scripted_failures(
    served: tuple[FakeTwilio, Receiver, AccountContext],
) -> None:
    fake, _, account = served
    wrong_token = replace(account, credentials={"account_sid": SID, "auth_token": "0" * 32})
    fake.fail_next(1, 429, headers={"Retry-After": "3"})
    fake.fail_next(1, 503)
    async with httpx.AsyncClient() as http:
        outcomes = [
            await twilio.send(MESSAGE, account, http, now=NOW),
            await twilio.send(MESSAGE, account, http, now=NOW),
            await twilio.send(MESSAGE, wrong_token, http, now=NOW),
            await twilio.send(replace(MESSAGE, to="+1415"), account, http, now=NOW),
            await twilio.send(replace(MESSAGE, text=""), account, http, now=NOW),
        ]
        fake.malformed_next()
        outcomes.append(await twilio.send(MESSAGE, account, http, now=NOW))
    assert outcomes == [
        Retry("20429", "Too Many Requests", 3.0),
        Retry("20503", "Service Unavailable"),
        Reject("20003", "Authenticate"),
        Reject("21211", "Invalid 'To' Phone Number: +1415"),
        Reject("21602", "Message body is required."),
        Reject("malformed_response", 'HTTP 201 without a message sid: {"status": "queued"}'),
    ]
    assert fake.messages == []
    assert len(fake.requests) == 6


async def test_messaging_service_sends_report_queued_first(
    served: tuple[FakeTwilio, Receiver, AccountContext],
) -> None:
    fake, receiver, account = served
    account = replace(account, config={"messaging_service_sid": SERVICE})
    async with httpx.AsyncClient() as http:
        outcome = await twilio.send(MESSAGE, account, http, now=NOW)
    assert isinstance(outcome, Accepted)
    assert outcome.raw is not None
    assert (outcome.raw["status"], outcome.raw["num_segments"]) == ("accepted", "0")
    await wait_for(lambda: len(receiver.events) == 3)
    assert [e.provider_status for e in receiver.events if isinstance(e, StatusUpdate)] == [
        "queued", "sent", "delivered"]
    assert fake.messages[0].messaging_service_sid == SERVICE


async def test_balance_and_sender_names_against_the_fake(
    served: tuple[FakeTwilio, Receiver, AccountContext],
) -> None:
    fake, _, account = served
    fake.numbers.extend(f"+1500555{n:04d}" for n in range(1000, 2000))
    async with httpx.AsyncClient() as http:
        assert await twilio.balance(account, http) == Balance("7.50", "USD")
        names = await twilio.sender_names(account, http)
    assert names == fake.numbers
    assert len(names) == 1002


async def test_post_inbound_reaches_the_gateway_signed(
    served: tuple[FakeTwilio, Receiver, AccountContext],
) -> None:
    _, receiver, account = served
    async with httpx.AsyncClient() as http:
        response = await post_inbound(http, account.webhook_url_inbound, TOKEN, account_sid=SID,
                                      from_=TO, to=FROM, body="STOP", message_sid=SM)
    assert response.status_code == 200
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert receiver.events == [InboundMessage(SM, from_number=TO, to_number=FROM, text="STOP")]


def test_fake_runs_standalone() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.twilio", "--port", str(port), "--account-sid", SID,
         "--auth-token", TOKEN, "--status-callbacks", "--number", "+15005550006"],
        cwd=Path(__file__).resolve().parents[3], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/2010-04-01/Accounts/{SID}/Balance.json"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(url, auth=(SID, TOKEN))
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr and process.stderr.read()
                assert time.monotonic() < deadline, "the fake did not start"
                time.sleep(0.05)
        assert response.json() == {"currency": "USD", "balance": "12.34", "account_sid": SID}
        assert httpx.get(url, auth=(SID, "0" * 32)).json()["code"] == 20003
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


_: SmsProvider = twilio
