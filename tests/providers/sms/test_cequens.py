"""CEQUENS: sends with an API token or a sign-in, push delivery reports, the URL token, the
unsupported queries and the stored models."""

from __future__ import annotations

import asyncio
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

from tests.fakes.cequens import FakeCequens
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
from tidings.providers.sms import cequens

API_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWNtZSJ9.c2lnbmF0dXJlLWFjbWU"
USER = "acme_eg"
API_KEY = "k3y-9f8e7d6c5b4a"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzaWduZWQiOiJpbiJ9.aXNzdWVkLWp3dA"
TOKEN = "whk_7Qm2cX8rT4vN"
SMS_ID = "056ef72a-1497-47be-a4c8-4a7835e071dc"
DLR_URL = f"https://gw.example.test/sms/v1/webhooks/acc_ceq/dlr/?token={TOKEN}"

ACCOUNT = AccountContext(
    account_id="acc_ceq",
    base_url="https://apis.cequens.com",
    credentials={"api_token": API_TOKEN},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound=f"https://gw.example.test/sms/v1/webhooks/acc_ceq/inbound/?token={TOKEN}",
    webhook_token=TOKEN,
)
SIGN_IN_ACCOUNT = replace(ACCOUNT, credentials={"user_name": USER, "api_key": API_KEY})
MESSAGE = OutboundSms(
    message_id="msg_01",
    to="+201001234567",
    sender_id="ACME",
    text="Your code is 482913",
    encoding="GSM-7",
    segments=1,
    dlt_entity_id=None,
    dlt_template_id=None,
    status_callback_url=DLR_URL,
    idempotency_key="msg_01",
)
HEADERS = {"authorization": f"Bearer {API_TOKEN}", "content-type": "application/json",
           "accept": "application/json"}
SUCCESS = {"replyCode": 0, "replyMessage": "Request handled successfully",
           "requestId": "64035880-7044-11eb-9f04-11a5522e89a7", "clientRequestId": 0,
           "requestTime": "2021-02-16T10:47:40.296",
           "data": {"SentSMSIDs": [{"SMSId": SMS_ID}], "InvalidRecipients": ""}}
SIGNED_IN = {"replyCode": 0, "replyMessage": "Request handled successfully",
             "requestId": "1f6b", "data": {"access_token": JWT}}


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def error(code: int, message: str) -> dict[str, Any]:
    return {"replyCode": code, "replyMessage": message, "requestId": "e1",
            "clientRequestId": 0, "requestTime": "2024-05-22T10:06:20.000", "data": None}


def messages(token: str = API_TOKEN, **changes: Any) -> Expected:
    """The send MESSAGE makes, with fields changed (``None`` removes one)."""
    body: dict[str, Any] = {"senderName": "ACME", "messageType": "text",
                            "messageText": "Your code is 482913", "recipients": "201001234567",
                            "dlrUrl": DLR_URL}
    body.update(changes)
    return Expected("POST", "/sms/v1/messages",
                    headers={**HEADERS, "authorization": f"Bearer {token}"},
                    json={key: value for key, value in body.items() if value is not None})


SIGN_IN = Expected("POST", "/auth/v1/tokens/", headers={"content-type": "application/json"},
                   json={"apiKey": API_KEY, "userName": USER})

SEND_CASES = [
    SendCase("success-sms-id", MESSAGE, ACCOUNT, [Canned(200, SUCCESS)], [messages()],
             Accepted((SMS_ID,), raw=SUCCESS)),
    SendCase("ucs2-text-is-unicode", sms(encoding="UCS-2", text="رمزك 482913"), ACCOUNT,
             [Canned(200, SUCCESS)], [messages(messageType="unicode", messageText="رمزك 482913")],
             Accepted((SMS_ID,), raw=SUCCESS)),
    SendCase("sender-from-config-when-message-has-none", sms(sender_id=None),
             account(sender_name="ACME-EG"), [Canned(200, SUCCESS)],
             [messages(senderName="ACME-EG")], Accepted((SMS_ID,), raw=SUCCESS)),
    SendCase("account-dlr-url-without-message-callback", sms(status_callback_url=None), ACCOUNT,
             [Canned(200, SUCCESS)], [messages()], Accepted((SMS_ID,), raw=SUCCESS)),
    SendCase("no-dlr-url-when-per-message-dlr-is-off", MESSAGE, account(per_message_dlr=False),
             [Canned(200, SUCCESS)], [messages(dlrUrl=None)], Accepted((SMS_ID,), raw=SUCCESS)),
    SendCase("flashing-and-acknowledgement-from-config", MESSAGE,
             account(flashing=True, acknowledgement=False), [Canned(200, SUCCESS)],
             [messages(flashing=1, acknowledgement=0)], Accepted((SMS_ID,), raw=SUCCESS)),
    SendCase("sign-in-then-send-with-the-jwt", MESSAGE, SIGN_IN_ACCOUNT,
             [Canned(200, SIGNED_IN), Canned(200, SUCCESS)], [SIGN_IN, messages(JWT)],
             Accepted((SMS_ID,), raw=SUCCESS)),
    SendCase("sign-in-refused-is-a-reject-without-a-send", MESSAGE, SIGN_IN_ACCOUNT,
             [Canned(401, error(401, "Invalid user name or API key"))], [SIGN_IN],
             Reject("401", "sign-in: Invalid user name or API key")),
    SendCase("sign-in-server-error-is-a-retry", MESSAGE, SIGN_IN_ACCOUNT,
             [Canned(503, "Service Unavailable", {"Retry-After": "7"})], [SIGN_IN],
             Retry("http_503", "sign-in: Service Unavailable", 7.0)),
    SendCase("sign-in-timeout-is-a-retry", MESSAGE, SIGN_IN_ACCOUNT,
             [Canned(error=httpx.ReadTimeout)], [SIGN_IN],
             Retry("timeout", "sign-in: ReadTimeout: connection reset by peer")),
    SendCase("sign-in-without-token-is-malformed", MESSAGE, SIGN_IN_ACCOUNT,
             [Canned(200, {"replyCode": 0, "data": {}})], [SIGN_IN],
             Reject("malformed_token_response",
                    'sign-in: HTTP 200 without an access token: {"replyCode":0,"data":{}}')),
    SendCase("jwt-echoed-in-an-error-is-redacted", MESSAGE, SIGN_IN_ACCOUNT,
             [Canned(200, SIGNED_IN), Canned(401, f"token {JWT} expired")],
             [SIGN_IN, messages(JWT)], Reject("http_401", "token [redacted] expired")),
    SendCase("invalid-sender-name-code-kept", MESSAGE, ACCOUNT,
             [Canned(400, error(-12, "Invalid Sender Name"))], [messages()],
             Reject("-12", "Invalid Sender Name")),
    SendCase("not-enough-credits-in-a-200", MESSAGE, ACCOUNT,
             [Canned(200, error(-17, "Not Enough Credits"))], [messages()],
             Reject("-17", "Not Enough Credits")),
    SendCase("internal-error-code-preferred", MESSAGE, ACCOUNT,
             [Canned(400, {**error(1, "Request failed"),
                           "error": {"status": 400, "description": "Bad Request",
                                     "internalErrors": [{"code": -6, "details":
                                                         "At least one valid recipient "
                                                         "required"}]}})],
             [messages()],
             Reject("-6", "Request failed; Bad Request; At least one valid recipient required")),
    SendCase("invalid-recipient-without-ids", MESSAGE, ACCOUNT,
             [Canned(200, {**SUCCESS, "data": {"SentSMSIDs": [],
                                               "InvalidRecipients": "201001234567"}})],
             [messages()], Reject("invalid_recipient",
                                  "CEQUENS refused the recipient: 201001234567")),
    SendCase("bad-token-401-without-envelope", MESSAGE, ACCOUNT,
             [Canned(401, "Unauthorized")], [messages()], Reject("http_401", "Unauthorized")),
    SendCase("server-error-is-a-retry", MESSAGE, ACCOUNT,
             [Canned(502, "<html>Bad Gateway</html>")], [messages()],
             Retry("http_502", "<html>Bad Gateway</html>")),
    SendCase("429-honours-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, error(429, "Too many requests"), {"Retry-After": "30"})], [messages()],
             Retry("http_429", '{"replyCode":429,"replyMessage":"Too many requests",'
                   '"requestId":"e1","clientRequestId":0,"requestTime":'
                   '"2024-05-22T10:06:20.000","data":null}', 30.0)),
    SendCase("timeout-is-a-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectTimeout)],
             [messages()], Retry("timeout", "ConnectTimeout: connection reset by peer")),
    SendCase("connection-error-is-a-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadError)],
             [messages()], Retry("transport_error", "ReadError: connection reset by peer")),
    SendCase("malformed-200-is-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, "<html>ok</html>")], [messages()],
             Reject("malformed_response",
                    "HTTP 200 without a CEQUENS envelope: <html>ok</html>")),
    SendCase("accepted-without-ids-is-still-accepted", MESSAGE, ACCOUNT,
             [Canned(200, {"replyCode": 0, "data": {"SentSMSIDs": []}})], [messages()],
             Accepted((), raw={"replyCode": 0, "data": {"SentSMSIDs": []}})),
    SendCase("no-sender-rejected-without-a-request", sms(sender_id=None), ACCOUNT, [], [],
             Reject("sender_name_required",
                    "CEQUENS needs a senderName: the message's sender or the config's")),
    SendCase("non-e164-number-rejected", sms(to="01001234567"), ACCOUNT, [], [],
             Reject("invalid_number", "the recipient must be an E.164 number")),
    SendCase("broken-stored-credentials-rejected", MESSAGE,
             replace(ACCOUNT, credentials={"api_token": API_TOKEN, "user_name": USER}), [], [],
             Reject("invalid_credentials",
                    "value: Value error, give either api_token or user_name + api_key, "
                    "not both")),
    SendCase("broken-stored-config-rejected", MESSAGE, account(flashing="often"), [], [],
             Reject("invalid_config", "flashing: Input should be a valid boolean, "
                    "unable to interpret input")),
]


def dlr(query: dict[str, str] | None = None, body: bytes = b"", content_type: str = "",
        token: str | None = TOKEN, method: str = "GET") -> WebhookRequest:
    query = dict(query or {})
    if token is not None:
        query["token"] = token
    url = "https://gw.example.test/sms/v1/webhooks/acc_ceq/dlr/" + (
        f"?{urlencode(query)}" if query else "")
    headers = {"content-type": content_type} if content_type else {}
    return WebhookRequest(method=method, url=url, headers=headers, query=query, body=body)


def report(status: str = "1", **extra: str) -> dict[str, str]:
    return {"clientMessageId": "0", "messageId": SMS_ID, "statusId": status,
            "senderName": "ACME", "recipient": "201001234567", "accountId": "31337",
            "submitDate": "2024-05-22T10:06:20.123", **extra}


WEBHOOK_CASES = [
    WebhookCase("delivered-in-query", dlr(report()), ACCOUNT,
                [StatusUpdate(SMS_ID, MessageState.DELIVERED, "1")]),
    WebhookCase("undelivered-keeps-status-message",
                dlr(report("2", statusMessage="Absent subscriber")), ACCOUNT,
                [StatusUpdate(SMS_ID, MessageState.FAILED, "2",
                              error_detail="Absent subscriber")]),
    WebhookCase("sent-buffered-in-progress-are-sent", dlr(report("17")), ACCOUNT,
                [StatusUpdate(SMS_ID, MessageState.SENT, "17")]),
    WebhookCase("blocked-and-smsc-rejected-are-failed", dlr(report("16")), ACCOUNT,
                [StatusUpdate(SMS_ID, MessageState.FAILED, "16")]),
    WebhookCase("status-word-read-case-insensitively", dlr(report("UnDelivered")), ACCOUNT,
                [StatusUpdate(SMS_ID, MessageState.FAILED, "UnDelivered")]),
    WebhookCase("json-body-with-other-casing",
                dlr(body=b'{"MessageId": "' + SMS_ID.encode() + b'", "StatusId": 1}',
                    content_type="application/json", method="POST"), ACCOUNT,
                [StatusUpdate(SMS_ID, MessageState.DELIVERED, "1")]),
    WebhookCase("form-body", dlr(body=urlencode(report("5")).encode(),
                                 content_type="application/x-www-form-urlencoded",
                                 method="POST"), ACCOUNT,
                [StatusUpdate(SMS_ID, MessageState.FAILED, "5")]),
    WebhookCase("unknown-1200-is-unknown-status", dlr(report("1200")), ACCOUNT,
                [UnknownStatus(SMS_ID, "1200")]),
    WebhookCase("no-message-id-is-payload-error", dlr({"statusId": "1"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("no-status-is-payload-error", dlr({"messageId": SMS_ID}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("broken-json-is-payload-error",
                dlr(body=b"{", content_type="application/json", method="POST"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing-token-is-refused", dlr(report(), token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", dlr(report(), token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("account-without-token-refuses-everything", dlr(report(), token=""),
                replace(ACCOUNT, webhook_token=""), WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(cequens, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(cequens, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(cequens, case)


# --- balance and sender names --------------------------------------------------------------------


@pytest.mark.parametrize("call", [cequens.balance, cequens.sender_names],
                         ids=["balance", "sender_names"])
async def test_queries_are_unsupported_without_a_request(call: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        assert await call(ACCOUNT, http) == Unsupported()


# --- stored models -------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    pytest.param({"api_token": API_TOKEN}, id="api-token"),
    pytest.param({"user_name": USER, "api_key": API_KEY}, id="sign-in-pair"),
])
def test_credentials_accepted(credentials: dict[str, str]) -> None:
    cequens.Credentials.model_validate(credentials)


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"user_name": USER}, id="user-without-key"),
    pytest.param({"api_key": API_KEY}, id="key-without-user"),
    pytest.param({"api_token": API_TOKEN, "api_key": API_KEY}, id="both-modes"),
    pytest.param({"api_token": f"Bearer {API_TOKEN}"}, id="bearer-prefix"),
    pytest.param({"api_token": "short"}, id="token-too-short"),
    pytest.param({"user_name": "acme eg", "api_key": API_KEY}, id="user-with-space"),
    pytest.param({"api_token": API_TOKEN, "sender": "ACME"}, id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        cequens.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="defaults"),
    pytest.param({"sender_name": "ACME-EG", "per_message_dlr": False, "flashing": True,
                  "acknowledgement": True}, id="everything"),
    pytest.param({"sender_name": "+201001234567"}, id="numeric-sender"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    cequens.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"sender_name": "A-VERY-LONG-SENDER"}, id="sender-too-long"),
    pytest.param({"sender_name": ""}, id="empty-sender"),
    pytest.param({"flashing": "often"}, id="flashing-not-bool"),
    pytest.param({"route": "1"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        cequens.Config.model_validate(config)


# --- against the fake, over a real socket --------------------------------------------------------


class Receiver:
    """A webhook endpoint on loopback that records what it is sent, as WebhookRequests."""

    def __init__(self) -> None:
        self.received: list[WebhookRequest] = []
        self.app = Starlette(routes=[Route("/dlr/", self._receive, methods=["GET", "POST"])])

    async def _receive(self, request: Request) -> Response:
        self.received.append(WebhookRequest(
            method=request.method, url=str(request.url), headers=dict(request.headers),
            query=dict(request.query_params), body=await request.body()))
        return JSONResponse({"status": "ok"})


async def test_sign_in_send_and_delivery_report_through_the_fake_over_loopback() -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app) as receiver_url:
        dlr_url = f"{receiver_url}/dlr/?token={TOKEN}"
        fake = FakeCequens(users={USER: API_KEY})
        fake.script_delivery("201001234567", "2")
        with serve_in_thread(fake.app) as base_url:
            live = replace(SIGN_IN_ACCOUNT, base_url=base_url, webhook_url_dlr=dlr_url)
            async with httpx.AsyncClient() as http:
                outcome = await cequens.send(sms(status_callback_url=dlr_url), live, http,
                                             now=NOW)
            deadline = time.monotonic() + 10
            while not receiver.received and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    [sent] = fake.sends
    assert fake.requests == [("POST", "/auth/v1/tokens/"), ("POST", "/sms/v1/messages")]
    assert sent.token == fake.issued[0]
    assert isinstance(outcome, Accepted)
    assert outcome.provider_ids == sent.sms_ids
    assert sent.body == {"senderName": "ACME", "messageType": "text",
                         "messageText": "Your code is 482913", "recipients": "201001234567",
                         "dlrUrl": dlr_url}
    [webhook] = receiver.received
    cequens.verify_webhook(webhook, live)
    assert cequens.parse_webhook(webhook, live) == [
        StatusUpdate(sent.sms_ids[0], MessageState.FAILED, "2", error_detail="UnDelivered")]


async def test_fake_refuses_a_wrong_token_and_a_bad_sender_as_cequens_does() -> None:
    fake = FakeCequens([API_TOKEN], sender_names={"ACME"})
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url, config={"per_message_dlr": False})
        async with httpx.AsyncClient() as http:
            wrong = await cequens.send(
                MESSAGE, replace(live, credentials={"api_token": "x" * 40}), http, now=NOW)
            bad_sender = await cequens.send(sms(sender_id="OTHER"), live, http, now=NOW)
            good = await cequens.send(MESSAGE, live, http, now=NOW)
    assert wrong == Reject("401", "Unauthorized: invalid or expired token")
    assert bad_sender == Reject("-12", "Invalid Sender Name")
    assert isinstance(good, Accepted)
    assert len(good.provider_ids) == 1
    assert len(fake.sends) == 1


_: SmsProvider = cequens
