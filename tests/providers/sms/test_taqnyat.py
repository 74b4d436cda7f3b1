"""Taqnyat: sends through /v1/messages, the URL token on (undocumented, unparsed) webhooks, the
balance, sender names and the stored models."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import httpx
import pydantic
import pytest

from tests.fakes.server import serve_in_thread
from tests.fakes.taqnyat import FIRST_MESSAGE_ID, FakeTaqnyat
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
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Balance,
    OutboundSms,
    ProviderError,
    Reject,
    Retry,
    SmsProvider,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import taqnyat

TOKEN = "c3f1a9e07b2d4c58a6e1f0b9d2c7a0adc2b"
WEBHOOK_TOKEN = "whk_T4qNy4tS3cr3t"
TEXT = "Your ACME code is 482913"
DLR_URL = "https://gw.example.test/v1/webhooks/acc_tq/dlr"

ACCOUNT = AccountContext(
    account_id="acc_tq",
    base_url="https://api.taqnyat.sa",
    credentials={"bearer_token": TOKEN},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound="https://gw.example.test/v1/webhooks/acc_tq/inbound",
    webhook_token=WEBHOOK_TOKEN,
)
MESSAGE = OutboundSms(
    message_id="msg_01",
    to="+966501234567",
    sender_id="ACME",
    text=TEXT,
    encoding="GSM-7",
    segments=1,
    dlt_entity_id=None,
    dlt_template_id=None,
    status_callback_url=None,
    idempotency_key="idem_01",
)
HEADERS = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
SUCCESS = {"statusCode": 201, "messageId": 5452899970, "cost": 0.026, "currency": "SAR",
           "totalCount": 1, "msgLength": 1, "accepted": "[966501234567,]", "rejected": "[]"}


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def post(**changes: Any) -> Expected:
    """The request MESSAGE makes, with body fields changed."""
    body = {"recipients": ["966501234567"], "body": TEXT, "sender": "ACME", **changes}
    return Expected("POST", "/v1/messages", headers=HEADERS, json=body)


def error(code: int, message: str) -> dict[str, Any]:
    return {"statusCode": code, "message": message}


SEND_CASES = [
    SendCase("sends-one-recipient-without-plus", MESSAGE, ACCOUNT, [Canned(201, SUCCESS)],
             [post()], Accepted(("5452899970",), raw=SUCCESS)),
    SendCase("config-sender-when-message-names-none", sms(sender_id=None),
             account(sender_id="ACME-AD"), [Canned(201, SUCCESS)], [post(sender="ACME-AD")],
             Accepted(("5452899970",), raw=SUCCESS)),
    SendCase("message-sender-wins-over-config", MESSAGE, account(sender_id="OTHER"),
             [Canned(201, SUCCESS)], [post()], Accepted(("5452899970",), raw=SUCCESS)),
    SendCase("arabic-text-sent-as-utf8-json", sms(text="رمز التحقق 482913", encoding="UCS-2"),
             ACCOUNT, [Canned(201, SUCCESS)], [post(body="رمز التحقق 482913")],
             Accepted(("5452899970",), raw=SUCCESS)),
    SendCase("string-message-id-kept", MESSAGE, ACCOUNT,
             [Canned(201, {**SUCCESS, "messageId": "5452899971"})], [post()],
             Accepted(("5452899971",), raw={**SUCCESS, "messageId": "5452899971"})),
    SendCase("http-200-success-is-accepted-too", MESSAGE, ACCOUNT, [Canned(200, SUCCESS)],
             [post()], Accepted(("5452899970",), raw=SUCCESS)),
    SendCase("recipient-only-in-rejected-is-a-reject", MESSAGE, ACCOUNT,
             [Canned(201, {**SUCCESS, "totalCount": 0, "accepted": "[]",
                           "rejected": "[966501234567,]"})], [post()],
             Reject("recipient_rejected", "Taqnyat rejected the recipient 966501234567")),
    SendCase("no-sender-anywhere-rejected-without-a-request", sms(sender_id=None), ACCOUNT, [],
             [], Reject("sender_required",
                        "Taqnyat needs an active sender name: the message and the account "
                        "name none")),
    SendCase("non-e164-number-rejected-without-a-request", sms(to="0501234567"), ACCOUNT, [], [],
             Reject("invalid_number", "the recipient must be an E.164 number")),
    SendCase("stored-credentials-invalid-rejected", MESSAGE,
             replace(ACCOUNT, credentials={"bearer_token": "short"}), [], [],
             Reject("invalid_credentials",
                    "bearer_token: String should match pattern '^[A-Za-z0-9._-]{16,256}$'")),
    SendCase("invalid-token-401-keeps-taqnyat-code-and-text", MESSAGE, ACCOUNT,
             [Canned(401, error(401, "invalid credentials information"))], [post()],
             Reject("401", "invalid credentials information")),
    SendCase("inactive-sender-400", MESSAGE, ACCOUNT,
             [Canned(400, error(400, "Sender Name is not active"))], [post()],
             Reject("400", "Sender Name is not active")),
    SendCase("error-code-104-inside-a-200", MESSAGE, ACCOUNT,
             [Canned(200, error(104, "Invalid Bearer Tokens"))], [post()],
             Reject("104", "Invalid Bearer Tokens")),
    SendCase("error-echoing-the-token-is-redacted", MESSAGE, ACCOUNT,
             [Canned(401, error(104, f"Invalid Bearer Tokens {TOKEN}"))], [post()],
             Reject("104", "Invalid Bearer Tokens [redacted]")),
    SendCase("client-error-without-taqnyat-body", MESSAGE, ACCOUNT,
             [Canned(404, "Not Found")], [post()], Reject("http_404", "Not Found")),
    SendCase("rate-limited-429-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, error(429, "Too Many Requests"), {"Retry-After": "7"})], [post()],
             Retry("http_429", '{"statusCode":429,"message":"Too Many Requests"}', 7.0)),
    SendCase("server-error-500-retry", MESSAGE, ACCOUNT,
             [Canned(500, error(500, "Internal Server Error"))], [post()],
             Retry("http_500", '{"statusCode":500,"message":"Internal Server Error"}')),
    SendCase("bad-gateway-502-html-retry", MESSAGE, ACCOUNT, [Canned(502, "<html>502</html>")],
             [post()], Retry("http_502", "<html>502</html>")),
    SendCase("timeout-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [post()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection-error-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)],
             [post()], Retry("transport_error", "ConnectError: connection reset by peer")),
    SendCase("201-without-message-id-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(201, {"statusCode": 201})], [post()],
             Reject("malformed_response", 'HTTP 201 without a messageId: {"statusCode":201}')),
    SendCase("201-with-non-json-body-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(201, "OK")], [post()],
             Reject("malformed_response", "HTTP 201 without a messageId: OK")),
]


def webhook(body: bytes = b'{"msgid": 5452899970, "status": "delivered"}',
            token: str | None = WEBHOOK_TOKEN,
            content_type: str = "application/json") -> WebhookRequest:
    query = {"token": token} if token is not None else {}
    url = DLR_URL + (f"?{urlencode(query)}" if query else "")
    return WebhookRequest(method="POST", url=url, headers={"Content-Type": content_type},
                          query=query, body=body)


WEBHOOK_CASES = [
    WebhookCase("undocumented-report-is-verified-then-ignored", webhook(), ACCOUNT, []),
    WebhookCase("form-body-is-ignored",
                webhook(b"messageId=5452899970&deliveryStatus=failed",
                        content_type="application/x-www-form-urlencoded"), ACCOUNT, []),
    WebhookCase("garbage-body-is-ignored-not-an-error", webhook(b"\xff{not json"), ACCOUNT, []),
    WebhookCase("empty-body-is-ignored", webhook(b""), ACCOUNT, []),
    WebhookCase("missing-token-is-refused", webhook(token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", webhook(token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("account-without-token-refuses-everything", webhook(token="anything"),
                replace(ACCOUNT, webhook_token=""), WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(taqnyat, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(taqnyat, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(taqnyat, case)


def test_no_status_words_are_mapped_because_none_are_documented() -> None:
    assert dict(taqnyat.STATUS_MAP) == {}


async def test_send_makes_no_schedule_or_delete_fields() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=SUCCESS)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await taqnyat.send(MESSAGE, ACCOUNT, http, now=NOW)
    assert set(json.loads(seen[0].content)) == {"recipients", "body", "sender"}


# --- balance and sender names --------------------------------------------------------------------


async def query(call: Any, answer: httpx.Response | Exception) -> tuple[Any, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await call(ACCOUNT, http), seen


async def query_failure(call: Any, answer: httpx.Response | Exception) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await query(call, answer)
    assert TOKEN not in str(raised.value)
    assert TOKEN not in repr(raised.value.failure)
    return raised.value


BALANCE = {"statusCode": 200, "accountStatus": "active", "accountExpiryDate": "23-08-2021",
           "balance": "2044.000", "currency": "SAR"}


async def test_balance_is_taqnyat_balance_and_currency_asked_with_the_bearer_token() -> None:
    balance, [request] = await query(taqnyat.balance, httpx.Response(200, json=BALANCE))
    assert balance == Balance("2044.000", "SAR")
    assert (request.method, request.url.path, dict(request.url.params)) == (
        "GET", "/account/balance", {})
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_balance_number_is_kept_as_written() -> None:
    balance, _ = await query(taqnyat.balance, httpx.Response(
        200, text='{"statusCode": 200, "balance": 12.500, "currency": "SAR"}'))
    assert balance == Balance("12.500", "SAR")


async def test_balance_without_currency_is_none() -> None:
    balance, _ = await query(taqnyat.balance, httpx.Response(200, json={"balance": "7"}))
    assert balance == Balance("7", None)


async def test_balance_with_an_invalid_token_keeps_taqnyat_code() -> None:
    failure = await query_failure(taqnyat.balance, httpx.Response(
        401, json=error(401, "invalid credentials information")))
    assert failure.failure == Reject("401", "invalid credentials information")


async def test_balance_error_inside_a_200_echoing_the_token_is_redacted() -> None:
    failure = await query_failure(taqnyat.balance, httpx.Response(
        200, json=error(104, f"Invalid Bearer Tokens {TOKEN}")))
    assert failure.failure == Reject("104", "Invalid Bearer Tokens [redacted]")


async def test_balance_without_balance_is_malformed() -> None:
    failure = await query_failure(taqnyat.balance, httpx.Response(200, json={"statusCode": 200}))
    assert failure.failure == Reject("malformed_response",
                                     'the balance answer has no balance: {"statusCode":200}')


async def test_balance_rate_limited_is_a_retry_with_its_wait() -> None:
    failure = await query_failure(taqnyat.balance, httpx.Response(
        429, json=error(429, "Too Many Requests"), headers={"Retry-After": "3"}))
    assert isinstance(failure.failure, Retry)
    assert failure.failure.retry_after == 3.0


async def test_balance_server_error_is_a_retry() -> None:
    failure = await query_failure(taqnyat.balance, httpx.Response(503, text="maintenance"))
    assert failure.failure == Retry("http_503", "maintenance")


async def test_balance_transport_error_is_a_retry() -> None:
    failure = await query_failure(taqnyat.balance, httpx.ReadTimeout("read timed out"))
    assert failure.failure == Retry("timeout", "ReadTimeout: read timed out")


async def test_sender_names_read_sender_name_objects_in_order() -> None:
    names, [request] = await query(taqnyat.sender_names, httpx.Response(200, json={
        "statusCode": 201, "senders": [
            {"senderName": "ACME", "status": "active", "destination": "local"},
            {"senderName": "ACME-AD", "status": "active", "destination": "local"}]}))
    assert names == ["ACME", "ACME-AD"]
    assert (request.method, request.url.path) == ("GET", "/v1/messages/senders")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_sender_names_read_the_other_recorded_shapes() -> None:
    names, _ = await query(taqnyat.sender_names, httpx.Response(200, json={"senders": [
        {"name": "ONE", "status": "accepted"}, {"sender": "TWO"}, "THREE", {"status": "x"}, 4]}))
    assert names == ["ONE", "TWO", "THREE"]


async def test_sender_names_without_a_list_is_malformed() -> None:
    failure = await query_failure(taqnyat.sender_names,
                                  httpx.Response(200, json={"statusCode": 200}))
    assert failure.failure.code == "malformed_response"


async def test_sender_names_with_an_invalid_token_keeps_taqnyat_code() -> None:
    failure = await query_failure(taqnyat.sender_names, httpx.Response(
        401, json=error(401, "invalid credentials information")))
    assert failure.failure == Reject("401", "invalid credentials information")


async def test_queries_with_invalid_stored_credentials_make_no_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    broken = replace(ACCOUNT, credentials={"token": TOKEN})
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        for call in (taqnyat.balance, taqnyat.sender_names):
            with pytest.raises(ProviderError) as raised:
                await call(broken, http)
            assert raised.value.failure.code == "invalid_credentials"
            assert TOKEN not in str(raised.value)


# --- stored models -------------------------------------------------------------------------------


def test_credentials_accept_a_bearer_token() -> None:
    taqnyat.Credentials.model_validate({"bearer_token": TOKEN})


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"bearer_token": "short"}, id="too-short"),
    pytest.param({"bearer_token": TOKEN[:10] + " " + TOKEN[10:]}, id="space"),
    pytest.param({"bearer_token": "Bearer " + TOKEN}, id="with-scheme"),
    pytest.param({"bearer_token": TOKEN, "sender": "ACME"}, id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        taqnyat.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="empty"),
    pytest.param({"sender_id": "ACME"}, id="sender"),
    pytest.param({"sender_id": "ACME-AD"}, id="advertising-sender"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    taqnyat.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"sender_id": ""}, id="empty-sender"),
    pytest.param({"sender_id": "A" * 17}, id="sender-too-long"),
    pytest.param({"sender_id": "-ACME"}, id="sender-starts-with-dash"),
    pytest.param({"scheduledDatetime": "2030-01-01T10:00"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        taqnyat.Config.model_validate(config)


# --- against the fake, over a real socket --------------------------------------------------------


async def test_send_balance_and_senders_through_the_fake_over_loopback() -> None:
    fake = FakeTaqnyat([TOKEN], senders=("ACME", "ACME-AD"), balance="1.000")
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            first = await taqnyat.send(MESSAGE, live, http, now=NOW)
            second = await taqnyat.send(sms(sender_id=None, to="+966551112222"),
                                        replace(live, config={"sender_id": "ACME-AD"}), http,
                                        now=NOW)
            balance = await taqnyat.balance(live, http)
            names = await taqnyat.sender_names(live, http)

    assert first == Accepted((str(FIRST_MESSAGE_ID),), raw={
        "statusCode": 201, "messageId": FIRST_MESSAGE_ID, "cost": 0.026, "currency": "SAR",
        "totalCount": 1, "msgLength": 1, "accepted": "[966501234567,]", "rejected": "[]"})
    assert isinstance(second, Accepted)
    assert second.provider_ids == (str(FIRST_MESSAGE_ID + 1),)
    one, two = fake.sends
    assert dict(one.fields) == post().json
    assert dict(two.fields) == post(recipients=["966551112222"], sender="ACME-AD").json
    assert balance == Balance("0.948", "SAR")
    assert names == ["ACME", "ACME-AD"]


async def test_fake_answers_taqnyat_errors_the_module_keeps() -> None:
    fake = FakeTaqnyat([TOKEN], senders=("ACME",), balance="0.010")
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            no_money = await taqnyat.send(MESSAGE, live, http, now=NOW)
            wrong_token = await taqnyat.send(
                MESSAGE, replace(live, credentials={"bearer_token": "x" * 32}), http, now=NOW)
            wrong_sender = await taqnyat.send(sms(sender_id="NOPE"), live, http, now=NOW)
            fake.fail_next(status=503)
            busy = await taqnyat.send(MESSAGE, live, http, now=NOW)
            fake.malformed_next()
            malformed = await taqnyat.send(MESSAGE, live, http, now=NOW)
            with pytest.raises(ProviderError) as raised:
                await taqnyat.balance(replace(live, credentials={"bearer_token": "y" * 32}),
                                      http)
    assert no_money == Reject("400", "Your balance is not enough")
    assert wrong_token == Reject("401", "invalid credentials information")
    assert wrong_sender == Reject("400", "Sender Name is not active")
    assert busy == Retry("http_503", "<html>Server Error</html>")
    assert malformed == Reject("malformed_response",
                               'HTTP 201 without a messageId: {"statusCode": 201}')
    assert raised.value.failure == Reject("401", "invalid credentials information")
    assert fake.sends == []


_: SmsProvider = taqnyat
