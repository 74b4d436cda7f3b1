"""Mora SMS: sendsms with its result codes, the URL token on webhook routes (Mora sends no
reports), the balance, and the stored models."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pydantic
import pytest

from tests.fakes.mora import FakeMora, envelope
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
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Balance,
    OutboundSms,
    ProviderError,
    Reject,
    Retry,
    SmsProvider,
    Unsupported,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import mora

API_KEY = "a9c3e1f7b2d84c6e90f1a2b3c4d5e6f708192a3b"
USERNAME = "acme_ksa"
TOKEN = "whk_Mq4Zr8Lp2Xc7"
REF_ID = 7012345
TEXT = "رمز التحقق الخاص بك هو 482913"
DLR_URL = "https://gw.example.test/v1/webhooks/acc_mora/dlr"

ACCOUNT = AccountContext(
    account_id="acc_mora",
    base_url="https://mora-sa.com",
    credentials={"api_key": API_KEY, "username": USERNAME},
    config={"sender": "ACME"},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound="https://gw.example.test/v1/webhooks/acc_mora/inbound",
    webhook_token=TOKEN,
)
MESSAGE = OutboundSms(
    message_id="msg_01",
    to="+966501234567",
    sender_id="ACME-OTP",
    text=TEXT,
    encoding="UCS-2",
    segments=1,
    dlt_entity_id=None,
    dlt_template_id=None,
    status_callback_url=None,
    idempotency_key="idem_01",
)
SUCCESS = envelope(100, REF_ID)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sendsms(**changes: str) -> Expected:
    """The form MESSAGE posts, with fields changed."""
    form = {"api_key": API_KEY, "username": USERNAME, "message": TEXT, "sender": "ACME-OTP",
            "numbers": "966501234567", "return": "json", **changes}
    return Expected("POST", "/api/v1/sendsms",
                    headers={"content-type": "application/x-www-form-urlencoded"}, form=form)


def failure(code: int | str, message: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"code": code}
    if message is not None:
        data["message"] = message
    return {"status": {"code": 200, "message": "OK"}, "data": data}


SEND_CASES = [
    SendCase("form-post-with-credentials-in-the-body", MESSAGE, ACCOUNT,
             [Canned(200, SUCCESS)], [sendsms()], Accepted((str(REF_ID),), raw=SUCCESS)),
    SendCase("account-sender-when-the-message-names-none", sms(sender_id=None), ACCOUNT,
             [Canned(200, SUCCESS)], [sendsms(sender="ACME")],
             Accepted((str(REF_ID),), raw=SUCCESS)),
    SendCase("non-saudi-number-in-international-form", sms(to="+201011170770"), ACCOUNT,
             [Canned(200, SUCCESS)], [sendsms(numbers="201011170770")],
             Accepted((str(REF_ID),), raw=SUCCESS)),
    SendCase("string-code-and-string-ref-id",
             MESSAGE, ACCOUNT, [Canned(200, {"status": {"code": "200"},
                                             "data": {"code": "100", "ref_id": "ab12"}})],
             [sendsms()], Accepted(("ab12",), raw={"status": {"code": "200"},
                                                   "data": {"code": "100", "ref_id": "ab12"}})),
    SendCase("success-without-ref-id-is-accepted-without-an-id", MESSAGE, ACCOUNT,
             [Canned(200, failure(100, "Numbers received successfully"))], [sendsms()],
             Accepted((), raw=failure(100, "Numbers received successfully"))),
    SendCase("top-level-code-100", MESSAGE, ACCOUNT,
             [Canned(200, {"code": 100, "message": "Numbers received successfully"})],
             [sendsms()],
             Accepted((), raw={"code": 100, "message": "Numbers received successfully"})),
    SendCase("plain-text-100", MESSAGE, ACCOUNT, [Canned(200, "100")], [sendsms()],
             Accepted((), raw={"code": 100})),
    SendCase("no-sender-anywhere-rejected-without-a-request", sms(sender_id=None), account(),
             [], [], Reject("sender_id_required",
                            "Mora needs a sender name: set one on the message or the account")),
    SendCase("not-e164-rejected-without-a-request", sms(to="0501234567"), ACCOUNT, [], [],
             Reject("invalid_number", "the recipient is not an E.164 number")),
    SendCase("stored-credentials-no-longer-valid", MESSAGE,
             replace(ACCOUNT, credentials={"api_key": API_KEY}), [], [],
             Reject("invalid_credentials", "username: Field required")),
    SendCase("stored-config-no-longer-valid", MESSAGE, account(sender="x" * 30), [], [],
             Reject("invalid_config", "sender: String should match pattern "
                                      "'^[A-Za-z0-9][A-Za-z0-9 ._&-]{0,15}$'")),
    SendCase("105-insufficient-balance", MESSAGE, ACCOUNT,
             [Canned(200, failure(105, "Insufficient balance"))], [sendsms()],
             Reject("105", "Insufficient balance")),
    SendCase("106-sender-not-available", MESSAGE, ACCOUNT,
             [Canned(200, failure(106, "Sender name not available"))], [sendsms()],
             Reject("106", "Sender name not available")),
    SendCase("107-sender-blocked-text-from-the-table", MESSAGE, ACCOUNT,
             [Canned(200, failure(107, None))], [sendsms()],
             Reject("107", "Sender name is blocked")),
    SendCase("108-no-valid-numbers-in-arabic-kept-verbatim", MESSAGE, ACCOUNT,
             [Canned(200, failure("108", "لا توجد أرقام صالحة للإرسال"))], [sendsms()],
             Reject("108", "لا توجد أرقام صالحة للإرسال")),
    SendCase("112-prohibited-words", MESSAGE, ACCOUNT,
             [Canned(200, failure(112, "Message contains prohibited words"))], [sendsms()],
             Reject("112", "Message contains prohibited words")),
    SendCase("114-account-suspended", MESSAGE, ACCOUNT,
             [Canned(200, failure(114, "Account is suspended"))], [sendsms()],
             Reject("114", "Account is suspended")),
    SendCase("unknown-code-is-a-reject-never-a-retry", MESSAGE, ACCOUNT,
             [Canned(200, {"data": {"code": 999}})], [sendsms()],
             Reject("999", "Mora error 999")),
    SendCase("unknown-code-with-only-the-status-message",
             MESSAGE, ACCOUNT,
             [Canned(200, {"status": {"code": 200, "message": "Sender not approved"},
                           "data": {"code": 121}})],
             [sendsms()], Reject("121", "Sender not approved")),
    SendCase("plain-text-error-code", MESSAGE, ACCOUNT, [Canned(200, "105")], [sendsms()],
             Reject("105", "Insufficient balance")),
    SendCase("status-block-401-at-http-401", MESSAGE, ACCOUNT,
             [Canned(401, {"status": {"code": 401, "message": "Invalid api_key or username"},
                           "data": None})],
             [sendsms()], Reject("401", "Invalid api_key or username")),
    SendCase("status-block-error-at-http-200", MESSAGE, ACCOUNT,
             [Canned(200, {"status": {"code": 403, "message": "IP not allowed"}})],
             [sendsms()], Reject("403", "IP not allowed")),
    SendCase("error-echoing-the-key-is-redacted", MESSAGE, ACCOUNT,
             [Canned(200, failure(114, f"Account {USERNAME} with key {API_KEY} suspended"))],
             [sendsms()], Reject("114", "Account [redacted] with key [redacted] suspended")),
    SendCase("client-error-without-mora-body", MESSAGE, ACCOUNT, [Canned(404, "Not Found")],
             [sendsms()], Reject("http_404", "Not Found")),
    SendCase("rate-limited-429-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, "Too Many Requests", {"Retry-After": "7"})], [sendsms()],
             Retry("http_429", "Too Many Requests", 7.0)),
    SendCase("server-error-503-retry", MESSAGE, ACCOUNT, [Canned(503, "<html>503</html>")],
             [sendsms()], Retry("http_503", "<html>503</html>")),
    SendCase("server-error-with-mora-body-is-still-a-retry", MESSAGE, ACCOUNT,
             [Canned(500, failure(114, "Account is suspended"))], [sendsms()],
             Retry("http_500", '{"status":{"code":200,"message":"OK"},"data":{"code":114,'
                               '"message":"Account is suspended"}}')),
    SendCase("timeout-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [sendsms()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection-error-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)],
             [sendsms()], Retry("transport_error", "ConnectError: connection reset by peer")),
    SendCase("malformed-json-200-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, "{not json")], [sendsms()],
             Reject("malformed_response", "HTTP 200 without a Mora result code: {not json")),
    SendCase("200-envelope-without-code-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, {"status": {"code": 200, "message": "OK"}, "data": {}})],
             [sendsms()],
             Reject("malformed_response", 'HTTP 200 without a Mora result code: '
                                          '{"status":{"code":200,"message":"OK"},"data":{}}')),
]


def webhook(body: bytes = b"{}", token: str | None = TOKEN, method: str = "POST",
            content_type: str | None = "application/json") -> WebhookRequest:
    query = {"token": token} if token is not None else {}
    url = DLR_URL + (f"?token={token}" if token is not None else "")
    headers = {"Content-Type": content_type} if content_type else {}
    return WebhookRequest(method=method, url=url, headers=headers, query=query, body=body)


WEBHOOK_CASES = [
    WebhookCase("verified-post-records-nothing",
                webhook(b'{"ref_id": 7012345, "status": "Delivered"}'), ACCOUNT, []),
    WebhookCase("verified-empty-get-records-nothing",
                webhook(b"", method="GET", content_type=None), ACCOUNT, []),
    WebhookCase("verified-unreadable-body-records-nothing", webhook(b"\xff\xfe"), ACCOUNT, []),
    WebhookCase("missing-token-is-refused", webhook(token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", webhook(token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("account-without-token-refuses-everything", webhook(),
                replace(ACCOUNT, webhook_token=""), WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(mora, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(mora, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(mora, case)


def test_no_status_word_is_mapped() -> None:
    assert mora.STATUS_MAP == {}


# --- balance and sender names --------------------------------------------------------------------


async def query_balance(answer: httpx.Response | Exception,
                        acc: AccountContext = ACCOUNT) -> tuple[Balance, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await mora.balance(acc, http), seen


async def balance_failure(answer: httpx.Response | Exception,
                          acc: AccountContext = ACCOUNT) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await query_balance(answer, acc)
    assert API_KEY not in str(raised.value)
    assert USERNAME not in str(raised.value)
    return raised.value


async def test_balance_is_a_get_with_both_credentials_in_the_query() -> None:
    balance, [request] = await query_balance(httpx.Response(200, json={
        "status": {"code": 200, "message": "OK"}, "data": {"balance": 1500}}))
    assert balance == Balance("1500", None)
    assert (request.method, request.url.path, dict(request.url.params)) == (
        "GET", "/api/v1/balance", {"api_key": API_KEY, "username": USERNAME})


async def test_balance_decimal_is_kept_as_written() -> None:
    balance, _ = await query_balance(httpx.Response(
        200, text='{"status": {"code": 200}, "data": {"balance": 120.50}}'))
    assert balance == Balance("120.50", None)


async def test_balance_string_is_kept() -> None:
    balance, _ = await query_balance(httpx.Response(200, json={"data": {"balance": "88.25"}}))
    assert balance == Balance("88.25", None)


async def test_balance_with_bad_credentials_keeps_the_status_code() -> None:
    failure = await balance_failure(httpx.Response(401, json={
        "status": {"code": 401, "message": "Invalid api_key or username"}, "data": None}))
    assert failure.failure == Reject("401", "Invalid api_key or username")


async def test_balance_error_code_in_a_200_is_a_reject() -> None:
    failure = await balance_failure(httpx.Response(200, json=envelope(114)))
    assert failure.failure == Reject("114", "Account is suspended")


async def test_balance_error_echoing_credentials_is_redacted() -> None:
    failure = await balance_failure(httpx.Response(403, text=f"denied for {USERNAME}"))
    assert failure.failure == Reject("http_403", "denied for [redacted]")


async def test_balance_without_balance_is_malformed() -> None:
    failure = await balance_failure(httpx.Response(200, json={"data": {}}))
    assert failure.failure == Reject("malformed_response",
                                     'the balance answer has no data.balance: {"data":{}}')


async def test_balance_rate_limited_is_a_retry() -> None:
    failure = await balance_failure(httpx.Response(429, text="slow down",
                                                   headers={"Retry-After": "4"}))
    assert failure.failure == Retry("http_429", "slow down", 4.0)


async def test_balance_transport_error_loses_the_url_with_the_credentials() -> None:
    failure = await balance_failure(httpx.ConnectError(
        f"cannot reach https://mora-sa.com/api/v1/balance?api_key={API_KEY}&username={USERNAME}"))
    assert failure.failure == Retry("transport_error", "ConnectError: cannot reach [url]")


async def test_balance_with_invalid_stored_credentials_makes_no_request() -> None:
    failure = await balance_failure(httpx.Response(500),
                                    replace(ACCOUNT, credentials={"api_key": "short"}))
    assert isinstance(failure.failure, Reject)
    assert failure.failure.code == "invalid_credentials"


async def test_sender_names_are_unsupported() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))) \
            as http:
        assert await mora.sender_names(ACCOUNT, http) == Unsupported()


# --- stored models -------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    pytest.param({"api_key": API_KEY, "username": USERNAME}, id="name"),
    pytest.param({"api_key": API_KEY, "username": "966505995291"}, id="mobile-number"),
])
def test_credentials_accepted(credentials: dict[str, str]) -> None:
    mora.Credentials.model_validate(credentials)


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"api_key": API_KEY}, id="no-username"),
    pytest.param({"username": USERNAME}, id="no-key"),
    pytest.param({"api_key": "short", "username": USERNAME}, id="key-too-short"),
    pytest.param({"api_key": API_KEY[:20] + " " + API_KEY[20:], "username": USERNAME},
                 id="key-with-space"),
    pytest.param({"api_key": API_KEY, "username": "ab"}, id="username-too-short"),
    pytest.param({"api_key": API_KEY, "username": "a b c"}, id="username-with-spaces"),
    pytest.param({"api_key": API_KEY, "username": USERNAME, "password": "x"},
                 id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        mora.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="no-default-sender"),
    pytest.param({"sender": "ACME"}, id="sender"),
    pytest.param({"sender": "Vision Dim"}, id="sender-with-space"),
    pytest.param({"sender": "THAGHR-S"}, id="sender-with-hyphen"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    mora.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"sender": ""}, id="empty-sender"),
    pytest.param({"sender": " ACME"}, id="leading-space"),
    pytest.param({"sender": "A" * 17}, id="sender-too-long"),
    pytest.param({"sender_id": "ACME"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        mora.Config.model_validate(config)


# --- against the fake, over a real socket --------------------------------------------------------


async def test_send_and_balance_through_the_fake_over_loopback() -> None:
    fake = FakeMora([(API_KEY, USERNAME)], senders={"ACME-OTP", "ACME"}, balance=10)
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            first = await mora.send(MESSAGE, live, http, now=NOW)
            second = await mora.send(sms(sender_id=None, to="+966507654321"), live, http,
                                     now=NOW)
            balance = await mora.balance(live, http)
    first_send, second_send = fake.sends
    assert first == Accepted((str(first_send.ref_id),), raw=envelope(100, first_send.ref_id))
    assert second == Accepted((str(second_send.ref_id),),
                              raw=envelope(100, second_send.ref_id))
    assert dict(first_send.fields) == dict(sendsms().form or {})
    assert (second_send.sender, second_send.numbers) == ("ACME", ("966507654321",))
    assert balance == Balance("8", None)
    assert [(method, path) for method, path, _ in fake.requests] == [
        ("POST", "/api/v1/sendsms"), ("POST", "/api/v1/sendsms"), ("GET", "/api/v1/balance")]


async def test_fake_answers_mora_codes_the_module_keeps() -> None:
    fake = FakeMora([(API_KEY, USERNAME)], senders={"ACME-OTP"}, blocked_senders={"ACME-OTP"},
                    balance=0)
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            unregistered = await mora.send(sms(sender_id="OTHER"), live, http, now=NOW)
            blocked = await mora.send(MESSAGE, live, http, now=NOW)
            fake.blocked_senders = frozenset()
            no_money = await mora.send(MESSAGE, live, http, now=NOW)
            bad_number = await mora.send(sms(to="+1234567"), live, http, now=NOW)
            wrong_key = await mora.send(
                MESSAGE, replace(live, credentials={"api_key": "b" * 40, "username": USERNAME}),
                http, now=NOW)
            fake.fail_next(status=503, headers={"Retry-After": "2"})
            busy = await mora.send(MESSAGE, live, http, now=NOW)
    assert unregistered == Reject("106", "Sender name not available")
    assert blocked == Reject("107", "Sender name is blocked")
    assert no_money == Reject("105", "Insufficient balance")
    assert bad_number == Reject("108", "No valid numbers for sending")
    assert wrong_key == Reject("401", "Invalid api_key or username")
    assert busy == Retry("http_503", "<html>Server Error</html>", 2.0)
    assert fake.sends == []


async def test_fake_text_format_answers_the_bare_code() -> None:
    fake = FakeMora([(API_KEY, USERNAME)])
    with serve_in_thread(fake.app) as base_url:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"{base_url}/api/v1/sendsms", params={
                "api_key": API_KEY, "username": USERNAME, "message": "hi", "sender": "ACME",
                "numbers": "966501234567", "response": "text"})
    assert (answer.status_code, answer.text) == (200, "100")


_: SmsProvider = mora
