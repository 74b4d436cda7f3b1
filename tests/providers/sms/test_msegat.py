"""Msegat: JSON sends with the bulk id, Msegat's codes kept, relayed reports behind the URL
token, balance and sender names, the stored models, and the module against the fake over
loopback."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import httpx
import pydantic
import pytest

from tests.fakes.msegat import FakeMsegat
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
from tidings.providers.sms import msegat

USER = "acme_ops"
API_KEY = "3F9A2C7D1E8B4A6F0C5D9E2B7A1F4C8D"
TOKEN = "whk_M5gT2qLr8Xv"
DLR_URL = f"https://gw.example.test/sms/v1/webhooks/acc_msegat/dlr/?token={TOKEN}"
BULK_ID = "1748213"

ACCOUNT = AccountContext(
    account_id="acc_msegat",
    base_url="https://www.msegat.com",
    credentials={"user_name": USER, "api_key": API_KEY},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound=f"https://gw.example.test/sms/v1/webhooks/acc_msegat/inbound/"
                        f"?token={TOKEN}",
    webhook_token=TOKEN,
)
MESSAGE = OutboundSms(
    message_id="01JD0Z8Q4W5X6Y7Z8A9B0C1D2E",
    to="+966505980169",
    sender_id="ACME",
    text="Pin Code is: 4829",
    encoding="GSM-7",
    segments=1,
    dlt_entity_id=None,
    dlt_template_id=None,
    status_callback_url=DLR_URL,
    idempotency_key="01JD0Z8Q4W5X6Y7Z8A9B0C1D2E",
)
SUCCESS = {"code": f"M0000-{BULK_ID}", "message": "Success"}
ACCEPTED = Accepted((BULK_ID,), raw=SUCCESS)


def account(**config: Any) -> AccountContext:
    return replace(ACCOUNT, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def post(**changes: str) -> Expected:
    """The request MESSAGE makes, with JSON fields changed."""
    body = {
        "userName": USER,
        "apiKey": API_KEY,
        "numbers": "966505980169",
        "userSender": "ACME",
        "msg": "Pin Code is: 4829",
        "msgEncoding": "UTF8",
        "reqBulkId": "true",
        "reqFilter": "true",
        **changes,
    }
    return Expected("POST", "/gw/sendsms.php",
                    headers={"accept": "application/json", "content-type": "application/json"},
                    json=body)


def error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


SEND_CASES = [
    SendCase("success-bulk-id-after-the-code", MESSAGE, ACCOUNT,
             [Canned(200, SUCCESS)], [post()], ACCEPTED),
    SendCase("legacy-success-code-1-with-bulk-id", MESSAGE, ACCOUNT,
             [Canned(200, {"code": f"1-{BULK_ID}", "message": "Success"})], [post()],
             Accepted((BULK_ID,), raw={"code": f"1-{BULK_ID}", "message": "Success"})),
    SendCase("success-without-bulk-id-is-accepted-without-ids", MESSAGE, ACCOUNT,
             [Canned(200, {"code": "M0000", "message": "Success"})], [post()],
             Accepted((), raw={"code": "M0000", "message": "Success"})),
    SendCase("success-code-as-integer", MESSAGE, ACCOUNT,
             [Canned(200, {"code": 1, "message": "Success"})], [post()],
             Accepted((), raw={"code": 1, "message": "Success"})),
    SendCase("success-with-an-id-field", MESSAGE, ACCOUNT,
             [Canned(200, {"code": "1", "message": "Success", "id": 99812})], [post()],
             Accepted(("99812",), raw={"code": "1", "message": "Success", "id": 99812})),
    SendCase("bare-text-1-is-success", MESSAGE, ACCOUNT, [Canned(200, "1")], [post()],
             Accepted((), raw={"code": "1"})),
    SendCase("arabic-text-sent-as-it-is-in-utf8",
             sms(text="رمز التحقق: 4829", encoding="UCS-2"), ACCOUNT,
             [Canned(200, SUCCESS)], [post(msg="رمز التحقق: 4829")], ACCEPTED),
    SendCase("sender-from-config-when-the-message-has-none", sms(sender_id=None),
             account(sender_id="ACME-AD"), [Canned(200, SUCCESS)],
             [post(userSender="ACME-AD")], ACCEPTED),
    SendCase("message-sender-wins-over-config", MESSAGE, account(sender_id="OTHER"),
             [Canned(200, SUCCESS)], [post()], ACCEPTED),
    SendCase("flags-off-from-config", MESSAGE,
             account(request_bulk_id=False, filter_duplicates=False),
             [Canned(200, {"code": "M0000", "message": "Success"})],
             [post(reqBulkId="false", reqFilter="false")],
             Accepted((), raw={"code": "M0000", "message": "Success"})),
    SendCase("non-saudi-number-in-international-form", sms(to="+971507679351"), ACCOUNT,
             [Canned(200, SUCCESS)], [post(numbers="971507679351")], ACCEPTED),
    SendCase("no-sender-anywhere-rejected-without-a-request", sms(sender_id=None), ACCOUNT,
             [], [], Reject("sender_id_required",
                            "Msegat needs an approved sender name (userSender)")),
    SendCase("number-not-e164-rejected-without-a-request", sms(to="0505980169"), ACCOUNT, [],
             [], Reject("invalid_number", "the recipient must be an E.164 number")),
    SendCase("stored-credentials-invalid-rejected", MESSAGE,
             replace(ACCOUNT, credentials={"user_name": USER}), [], [],
             Reject("invalid_credentials", "api_key: Field required")),
    SendCase("stored-config-invalid-rejected", MESSAGE, account(route="4"), [], [],
             Reject("invalid_config", "route: Extra inputs are not permitted")),
    SendCase("invalid-login-m0002", MESSAGE, ACCOUNT,
             [Canned(200, error("M0002", "Invalid login info"))], [post()],
             Reject("M0002", "Invalid login info")),
    SendCase("legacy-invalid-login-1020", MESSAGE, ACCOUNT,
             [Canned(200, error("1020", "Invalid login info"))], [post()],
             Reject("1020", "Invalid login info")),
    SendCase("variables-missing-m0001", MESSAGE, ACCOUNT,
             [Canned(200, error("M0001", "Variables missing"))], [post()],
             Reject("M0001", "Variables missing")),
    SendCase("no-balance-1060", MESSAGE, ACCOUNT,
             [Canned(200, error("1060", "Balance is not enough"))], [post()],
             Reject("1060", "Balance is not enough")),
    SendCase("duplicate-1061", MESSAGE, ACCOUNT,
             [Canned(200, error("1061", "MSG duplicated"))], [post()],
             Reject("1061", "MSG duplicated")),
    SendCase("sender-not-approved-1110", MESSAGE, ACCOUNT,
             [Canned(200, error("1110", "Sender name is missing or incorrect"))], [post()],
             Reject("1110", "Sender name is missing or incorrect")),
    SendCase("bad-number-1120", MESSAGE, ACCOUNT,
             [Canned(200, error("1120", "Mobile numbers is not correct"))], [post()],
             Reject("1120", "Mobile numbers is not correct")),
    SendCase("too-long-1140-without-message-takes-the-documented-text", MESSAGE, ACCOUNT,
             [Canned(200, {"code": "1140"})], [post()],
             Reject("1140", "MSG length is too long")),
    SendCase("free-otp-content-1064", MESSAGE, ACCOUNT,
             [Canned(200, {"code": "1064", "message": ""})], [post()],
             Reject("1064", msegat.ERRORS["1064"])),
    SendCase("bare-text-error-code", MESSAGE, ACCOUNT, [Canned(200, "M0002")], [post()],
             Reject("M0002", "Invalid login info")),
    SendCase("unknown-code-kept-verbatim", MESSAGE, ACCOUNT,
             [Canned(200, error("M0059", "Something new"))], [post()],
             Reject("M0059", "Something new")),
    SendCase("unknown-code-without-message", MESSAGE, ACCOUNT,
             [Canned(200, {"code": "M0059"})], [post()],
             Reject("M0059", "unknown Msegat code")),
    SendCase("error-message-echoing-the-key-is-redacted", MESSAGE, ACCOUNT,
             [Canned(200, error("M0002", f"Invalid login info for {API_KEY}"))], [post()],
             Reject("M0002", "Invalid login info for [redacted]")),
    SendCase("code-in-a-4xx-envelope-kept", MESSAGE, ACCOUNT,
             [Canned(403, error("M0002", "Invalid login info"))], [post()],
             Reject("M0002", "Invalid login info")),
    SendCase("4xx-without-envelope", MESSAGE, ACCOUNT, [Canned(404, "Not Found")], [post()],
             Reject("http_404", "Not Found")),
    SendCase("too-many-requests-429-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, "Too Many Requests", {"Retry-After": "30"})], [post()],
             Retry("http_429", "Too Many Requests", 30.0)),
    SendCase("server-error-500-retry", MESSAGE, ACCOUNT,
             [Canned(500, "Internal Server Error")], [post()],
             Retry("http_500", "Internal Server Error")),
    SendCase("bad-gateway-502-retry", MESSAGE, ACCOUNT, [Canned(502, "<html>502</html>")],
             [post()], Retry("http_502", "<html>502</html>")),
    SendCase("timeout-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [post()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection-error-retry", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)],
             [post()], Retry("transport_error", "ConnectError: connection reset by peer")),
    SendCase("200-that-is-not-json-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, "<html>Maintenance</html>")], [post()],
             Reject("malformed_response",
                    "HTTP 200 without a Msegat code: <html>Maintenance</html>")),
    SendCase("200-json-without-code-rejected", MESSAGE, ACCOUNT,
             [Canned(200, {"message": "Success"})], [post()],
             Reject("malformed_response",
                    'HTTP 200 without a Msegat code: {"message":"Success"}')),
]


def dlr_request(body: bytes, content_type: str | None = "application/json",
                token: str | None = TOKEN, query: dict[str, str] | None = None,
                method: str = "POST") -> WebhookRequest:
    params = dict(query or {})
    if token is not None:
        params["token"] = token
    base = "https://gw.example.test/sms/v1/webhooks/acc_msegat/dlr/"
    url = base + (f"?{urlencode(params)}" if params else "")
    headers = {"Content-Type": content_type} if content_type else {}
    return WebhookRequest(method=method, url=url, headers=headers, query=params, body=body)


def as_json(value: Any, token: str | None = TOKEN) -> WebhookRequest:
    return dlr_request(json.dumps(value).encode(), token=token)


def report(status: str = "Delivered", **extra: str) -> dict[str, str]:
    return {"bulkId": BULK_ID, "status": status, "number": "966505980169", **extra}


WEBHOOK_CASES = [
    WebhookCase("json-delivered", as_json(report()), ACCOUNT,
                [StatusUpdate(BULK_ID, MessageState.DELIVERED, "Delivered")]),
    WebhookCase("json-failed-keeps-code-and-description",
                as_json(report("Failed", errorCode="EC_UNKNOWN_SUBSCRIBER",
                               description="Absent subscriber")), ACCOUNT,
                [StatusUpdate(BULK_ID, MessageState.FAILED, "Failed",
                              error_code="EC_UNKNOWN_SUBSCRIBER",
                              error_detail="Absent subscriber")]),
    WebhookCase("form-body-with-req-bulk-id",
                dlr_request(urlencode({"reqBulkId": BULK_ID, "status": "sent"}).encode(),
                            "application/x-www-form-urlencoded"), ACCOUNT,
                [StatusUpdate(BULK_ID, MessageState.SENT, "sent")]),
    WebhookCase("query-only-get-report",
                dlr_request(b"", None, query={"id": BULK_ID, "dlr": "DELIVERED"},
                            method="GET"), ACCOUNT,
                [StatusUpdate(BULK_ID, MessageState.DELIVERED, "DELIVERED")]),
    WebhookCase("numeric-id-and-reason",
                as_json({"BulkID": int(BULK_ID), "Status": "Rejected", "reason": "Blocked"}),
                ACCOUNT,
                [StatusUpdate(BULK_ID, MessageState.FAILED, "Rejected",
                              error_detail="Blocked")]),
    WebhookCase("array-of-reports-in-order",
                as_json([report("Queued"), report("Expired")]), ACCOUNT,
                [StatusUpdate(BULK_ID, MessageState.SENT, "Queued"),
                 StatusUpdate(BULK_ID, MessageState.FAILED, "Expired")]),
    WebhookCase("unknown-word-is-unknown-status", as_json(report("Pending")), ACCOUNT,
                [UnknownStatus(BULK_ID, "Pending")]),
    WebhookCase("no-id-is-payload-error", as_json({"status": "Delivered"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("no-status-is-payload-error", as_json({"bulkId": BULK_ID}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("broken-json-is-payload-error", dlr_request(b"{"), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("empty-body-and-query-is-payload-error",
                dlr_request(b"", None, method="GET"), ACCOUNT, WebhookPayloadError),
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
    await run_send_case(msegat, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(msegat, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(msegat, case)


def test_status_map_covers_only_reportable_states() -> None:
    assert set(msegat.STATUS_MAP.values()) <= {
        MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED}
    assert all(word == word.lower() for word in msegat.STATUS_MAP)


def test_every_documented_code_is_a_reject_with_its_text() -> None:
    assert {"M0001", "M0002", "1010", "1020", "1050", "1060", "1061", "1064", "1110", "1120",
            "1140", "M0036"} <= set(msegat.ERRORS)
    assert not set(msegat.ERRORS) & msegat.SUCCESS_CODES


# --- balance and sender names --------------------------------------------------------------------


async def query(handler: Any, call: Any, account_: AccountContext = ACCOUNT) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await call(account_, http)


async def test_balance_is_the_credits_text_verbatim() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="3042.00\n")

    assert await query(handler, msegat.balance) == Balance("3042.00", None)
    assert seen[0].method == "POST"
    assert seen[0].url.path == "/gw/Credits.php"
    assert seen[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(httpx.QueryParams(seen[0].content.decode())) == {
        "userName": USER, "apiKey": API_KEY, "msgEncoding": "UTF8"}


@pytest.mark.parametrize(("body", "failure"), [
    pytest.param("1020", Reject("1020", "Invalid login info"), id="bare-legacy-code"),
    pytest.param("M0002", Reject("M0002", "Invalid login info"), id="bare-code"),
    pytest.param({"code": "M0001", "message": "Variables missing"},
                 Reject("M0001", "Variables missing"), id="envelope"),
    pytest.param("<html>oops</html>",
                 Reject("malformed_response", "the credit answer is not a number: "
                                              "<html>oops</html>"), id="not-a-number"),
])
async def test_balance_errors(body: Any, failure: Reject) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, dict):
            return httpx.Response(200, json=body)
        return httpx.Response(200, text=body)

    with pytest.raises(ProviderError) as raised:
        await query(handler, msegat.balance)
    assert raised.value.failure == failure


async def test_balance_server_error_is_a_retry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="Service Unavailable", headers={"Retry-After": "5"})

    with pytest.raises(ProviderError) as raised:
        await query(handler, msegat.balance)
    assert raised.value.failure == Retry("http_503", "Service Unavailable", 5.0)


async def test_balance_transport_error_leaks_neither_url_nor_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} as {API_KEY}", request=request)

    with pytest.raises(ProviderError) as raised:
        await query(handler, msegat.balance)
    assert raised.value.failure == Retry("transport_error",
                                         "ConnectError: cannot reach [url] as [redacted]")
    assert API_KEY not in str(raised.value)


async def test_balance_with_invalid_stored_credentials_makes_no_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with pytest.raises(ProviderError) as raised:
        await query(handler, msegat.balance,
                    replace(ACCOUNT, credentials={"user_name": USER, "api_key": "short"}))
    assert raised.value.failure.code == "invalid_credentials"


@pytest.mark.parametrize(("body", "names"), [
    pytest.param({"code": "M0000", "message": "Success",
                  "data": [{"sender": "ACME", "status": "Activated"},
                           {"sender": "ACME-AD", "status": "Activated"},
                           {"sender": "NEWNAME", "status": "Pending"},
                           {"sender": "OLD", "status": "Refused"}]},
                 ["ACME", "ACME-AD"], id="envelope-data-filtered-by-status"),
    pytest.param([{"SenderName": "ACME", "Status": "active"}, {"SenderName": "ACME"}],
                 ["ACME"], id="bare-list-once-each"),
    pytest.param({"code": "1", "senders": [{"SenderID": "Msegat", "Status": "Activated"},
                                           {"SenderID": "Wait", "Status": "Under activation"}]},
                 ["Msegat"], id="senders-key"),
    pytest.param({"code": "M0000", "data": []}, [], id="none-yet"),
])
async def test_sender_names(body: Any, names: list[str]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=body)

    assert await query(handler, msegat.sender_names) == names
    assert seen[0].method == "POST"
    assert seen[0].url.path == "/gw/senders.php"
    assert json.loads(seen[0].content) == {"userName": USER, "apiKey": API_KEY,
                                           "msgEncoding": "UTF8"}


@pytest.mark.parametrize(("answer", "failure"), [
    pytest.param(httpx.Response(200, json={"code": "M0036",
                                           "message": "There is no any sender"}),
                 Reject("M0036", "There is no any sender"), id="no-sender-code"),
    pytest.param(httpx.Response(200, json={"code": "M0002", "message": "Invalid login info"}),
                 Reject("M0002", "Invalid login info"), id="bad-login"),
    pytest.param(httpx.Response(200, text="M0002"), Reject("M0002", "Invalid login info"),
                 id="bare-code"),
    pytest.param(httpx.Response(200, json={"code": "M0000"}),
                 Reject("malformed_response",
                        'the senders answer has no sender list: {"code":"M0000"}'),
                 id="no-list"),
    pytest.param(httpx.Response(500, text="oops"), Retry("http_500", "oops"), id="5xx"),
])
async def test_sender_names_errors(answer: httpx.Response, failure: Reject | Retry) -> None:
    with pytest.raises(ProviderError) as raised:
        await query(lambda request: answer, msegat.sender_names)
    assert raised.value.failure == failure


# --- stored models -------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    pytest.param({"user_name": USER, "api_key": API_KEY}, id="dashboard-key"),
    pytest.param({"user_name": "ops@acme.sa", "api_key": "a" * 128}, id="email-user-longest"),
])
def test_credentials_accepted(credentials: dict[str, str]) -> None:
    msegat.Credentials.model_validate(credentials)


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"user_name": USER}, id="no-key"),
    pytest.param({"user_name": "", "api_key": API_KEY}, id="empty-user"),
    pytest.param({"user_name": "acme ops", "api_key": API_KEY}, id="space-in-user"),
    pytest.param({"user_name": USER, "api_key": "3F9A2C7D"}, id="key-too-short"),
    pytest.param({"user_name": USER, "api_key": API_KEY + "\n"}, id="key-line-break"),
    pytest.param({"user_name": USER, "api_key": API_KEY, "sender": "ACME"}, id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        msegat.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="defaults"),
    pytest.param({"sender_id": "ACME-AD", "request_bulk_id": False,
                  "filter_duplicates": False}, id="everything"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    msegat.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"sender_id": ""}, id="empty-sender"),
    pytest.param({"sender_id": "A" * 17}, id="sender-too-long"),
    pytest.param({"sender_id": "ACME\nX"}, id="sender-line-break"),
    pytest.param({"request_bulk_id": "maybe"}, id="flag-not-boolean"),
    pytest.param({"time_to_send": "later"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        msegat.Config.model_validate(config)


# --- against the fake, over a real socket --------------------------------------------------------


async def test_send_balance_and_senders_through_the_fake_over_loopback() -> None:
    fake = FakeMsegat(USER, API_KEY, senders={"ACME": "Activated", "PROMO-AD": "Pending"},
                      balance="10.00")
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            first = await msegat.send(MESSAGE, live, http, now=NOW)
            arabic = await msegat.send(sms(to="+971507679351", text="مرحبا"), live, http,
                                       now=NOW)
            credit = await msegat.balance(live, http)
            names = await msegat.sender_names(live, http)

    sent, second = fake.sends
    assert first == Accepted((sent.bulk_id,), raw={"code": f"M0000-{sent.bulk_id}",
                                                   "message": "Success"})
    assert arabic == Accepted((second.bulk_id,), raw={"code": f"M0000-{second.bulk_id}",
                                                      "message": "Success"})
    assert dict(sent.fields) == {
        "userName": USER, "apiKey": API_KEY, "numbers": "966505980169", "userSender": "ACME",
        "msg": "Pin Code is: 4829", "msgEncoding": "UTF8", "reqBulkId": "true",
        "reqFilter": "true"}
    assert second.text == "مرحبا"
    assert credit == Balance("8.00", None)
    assert names == ["ACME"]


async def test_fake_answers_msegat_failures_the_module_keeps() -> None:
    fake = FakeMsegat(USER, API_KEY, senders={"ACME": "Activated", "PROMO-AD": "Pending"},
                      balance="2.00", reject_duplicates=True)
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        wrong_login = replace(live, credentials={"user_name": USER, "api_key": "0" * 32})
        async with httpx.AsyncClient() as http:
            bad_login = await msegat.send(MESSAGE, wrong_login, http, now=NOW)
            pending_sender = await msegat.send(sms(sender_id="PROMO-AD"), live, http, now=NOW)
            short_number = await msegat.send(sms(to="+9665059"), live, http, now=NOW)
            first = await msegat.send(MESSAGE, live, http, now=NOW)
            duplicate = await msegat.send(MESSAGE, live, http, now=NOW)
            long_text = await msegat.send(sms(text="x" * 161), live, http, now=NOW)
            fake.fail_next(status=503, headers={"Retry-After": "7"})
            unavailable = await msegat.send(sms(text="third"), live, http, now=NOW)
            with pytest.raises(ProviderError) as raised:
                await msegat.balance(wrong_login, http)
    assert bad_login == Reject("M0002", "Invalid login info")
    assert pending_sender == Reject("1110", "Sender name is missing or incorrect")
    assert short_number == Reject("1120", "Mobile numbers is not correct")
    assert isinstance(first, Accepted)
    assert len(first.provider_ids) == 1
    assert duplicate == Reject("1061", "MSG duplicated")
    assert long_text == Reject("1060", "Balance is not enough")
    assert unavailable == Retry("http_503", "Internal Server Error", 7.0)
    assert raised.value.failure == Reject("M0002", "Invalid login info")
    assert len(fake.sends) == 1


_: SmsProvider = msegat
