"""Vonage SMS API: sends and their per-part statuses, receipts and inbound messages (token and
signatures), the balance and the stored models."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import serve_in_thread
from tests.fakes.vonage import FakeVonage, vonage_signature
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
    Unsupported,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import vonage

API_KEY = "a1b2c3d4"
API_SECRET = "Xy7kQ2mN9pL4sT1v"
SIGNATURE_SECRET = "sIgN4tUr3s3cReT0123456789abcdefXYZ"
TOKEN = "whk_5Jm2qX8rT4vN"
DLR_URL = f"https://gw.example.test/sms/v1/webhooks/acc_vonage/dlr/?token={TOKEN}"
INBOUND_URL = f"https://gw.example.test/sms/v1/webhooks/acc_vonage/inbound/?token={TOKEN}"
MESSAGE_ID = "0A0000000123ABCD"

ACCOUNT = AccountContext(
    account_id="acc_vonage",
    base_url="https://rest.nexmo.com",
    credentials={"api_key": API_KEY, "api_secret": API_SECRET},
    config={},
    webhook_url_dlr=DLR_URL,
    webhook_url_inbound=INBOUND_URL,
    webhook_token=TOKEN,
)
SIGNING = replace(ACCOUNT, credentials={"api_key": API_KEY, "api_secret": API_SECRET,
                                        "signature_secret": SIGNATURE_SECRET})
MESSAGE = OutboundSms(
    message_id="msg_01",
    to="+447700900000",
    sender_id="AcmeInc",
    text="Your code is 482913",
    encoding="GSM-7",
    segments=1,
    dlt_entity_id=None,
    dlt_template_id=None,
    status_callback_url=None,
    idempotency_key="idem_01",
)
HEADERS = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}


def account(base: AccountContext = ACCOUNT, **config: Any) -> AccountContext:
    return replace(base, config=config)


def sms(**changes: Any) -> OutboundSms:
    return replace(MESSAGE, **changes)


def form(**changes: str | None) -> dict[str, str]:
    """The form MESSAGE sends, with fields changed (``None`` removes one)."""
    fields: dict[str, str | None] = {
        "from": "AcmeInc", "to": "447700900000", "text": "Your code is 482913",
        "client-ref": "msg_01", "callback": DLR_URL, "api_key": API_KEY, "api_secret": API_SECRET,
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


def post(**changes: str | None) -> Expected:
    return Expected("POST", "/sms/json", headers=HEADERS, form=form(**changes))


def signed_post(method: str, **changes: str | None) -> Expected:
    """The signed form: ``api_key``, ``timestamp`` and a ``sig`` computed by the fake's own
    implementation of Vonage's algorithm, lower-case as the module sends it."""
    fields = form(api_secret=None, timestamp=str(int(NOW.timestamp())), **changes)
    fields["sig"] = vonage_signature(fields, SIGNATURE_SECRET, method).lower()
    return Expected("POST", "/sms/json", headers=HEADERS, form=fields)


def part(message_id: str = MESSAGE_ID, **extra: str) -> dict[str, str]:
    return {"to": "447700900000", "message-id": message_id, "status": "0",
            "remaining-balance": "15.53590000", "message-price": "0.03330000",
            "network": "23410", **extra}


def answer(*parts: dict[str, str]) -> dict[str, Any]:
    return {"message-count": str(len(parts)), "messages": list(parts)}


def failed(status: str, text: str | None = None) -> dict[str, str]:
    return {"status": status, **({"error-text": text} if text is not None else {})}


SUCCESS = answer(part())
TWO_PARTS = answer(part("62dfdf68-6c7c-479a-a190-5c52f798a787"),
                   part("72ff9536-62d6-455a-9f0b-65f3c265b423"))
PARTIAL = answer(part("3295d748-4e14-4681-af78-166dca3c5aab"), failed("1", "Throttled"))
LONG_URL = "https://gateway.example.test/sms/v1/webhooks/01J9ZQ4Y7X3K2M8N6P5R4S3T2V/dlr/?token=" \
    + "t" * 32

SEND_CASES = [
    SendCase("success-one-part", MESSAGE, ACCOUNT, [Canned(200, SUCCESS)], [post()],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("long-text-answers-one-id-per-part", sms(text="x" * 200, segments=2), ACCOUNT,
             [Canned(200, TWO_PARTS)], [post(text="x" * 200)],
             Accepted(("62dfdf68-6c7c-479a-a190-5c52f798a787",
                       "72ff9536-62d6-455a-9f0b-65f3c265b423"), raw=TWO_PARTS)),
    SendCase("ucs2-text-is-type-unicode", sms(text="Код 482913", encoding="UCS-2"), ACCOUNT,
             [Canned(200, SUCCESS)], [post(text="Код 482913", type="unicode")],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("number-sender-loses-its-plus", sms(sender_id="+14155550100"), ACCOUNT,
             [Canned(200, SUCCESS)], [post(**{"from": "14155550100"})],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("india-dlt-ids-as-entity-id-and-content-id",
             sms(to="+919876543210", dlt_entity_id="1201159100000012345",
                 dlt_template_id="1107160000000012345"), ACCOUNT,
             [Canned(200, SUCCESS)],
             [post(to="919876543210", **{"entity-id": "1201159100000012345",
                                         "content-id": "1107160000000012345"})],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("message-callback-wins-over-the-account-url",
             sms(status_callback_url="https://cb.example.test/dlr?token=t1"), ACCOUNT,
             [Canned(200, SUCCESS)], [post(callback="https://cb.example.test/dlr?token=t1")],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("callback-over-100-characters-is-left-to-the-dashboard", MESSAGE,
             replace(ACCOUNT, webhook_url_dlr=LONG_URL), [Canned(200, SUCCESS)],
             [post(callback=None)], Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("message-id-over-40-characters-is-no-client-ref", sms(message_id="m" * 41), ACCOUNT,
             [Canned(200, SUCCESS)], [post(**{"client-ref": None})],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("signed-request-md5hash-sends-no-api-secret", MESSAGE,
             account(SIGNING, sign_requests=True), [Canned(200, SUCCESS)],
             [signed_post("md5hash")], Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("signed-request-sha256-hmac", MESSAGE,
             account(SIGNING, sign_requests=True, signature_method="sha256"),
             [Canned(200, SUCCESS)], [signed_post("sha256")],
             Accepted((MESSAGE_ID,), raw=SUCCESS)),
    SendCase("signing-without-a-signature-secret-rejected-without-a-request", MESSAGE,
             account(sign_requests=True), [], [],
             Reject("missing_signature_secret",
                    "sign_requests needs a signature_secret in the credentials")),
    SendCase("no-sender-rejected-without-a-request", sms(sender_id=None), ACCOUNT, [], [],
             Reject("missing_sender", "Vonage needs a from (the message's sender_id)")),
    SendCase("number-not-e164-rejected-without-a-request", sms(to="07700 900000"), ACCOUNT,
             [], [], Reject("invalid_number", "the recipient must be an E.164 number")),
    SendCase("stored-credentials-invalid-rejected", MESSAGE,
             replace(ACCOUNT, credentials={"api_key": "short", "api_secret": API_SECRET}), [], [],
             Reject("invalid_credentials",
                    "api_key: String should match pattern '^[A-Za-z0-9]{8}$'")),
    SendCase("stored-config-invalid-rejected", MESSAGE, account(signature_method="crc32"), [], [],
             Reject("invalid_config", "signature_method: Input should be 'md5hash', 'md5', "
                                      "'sha1', 'sha256' or 'sha512'")),
    SendCase("throttled-status-1-at-200-retried", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("1", "You are sending SMS faster than the account "
                                             "limit.")))], [post()],
             Retry("1", "You are sending SMS faster than the account limit.")),
    SendCase("throttled-with-retry-after-honoured", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("1", "Throttled")), {"Retry-After": "2"})], [post()],
             Retry("1", "Throttled", 2.0)),
    SendCase("internal-error-status-5-retried", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("5", "Internal Error")))], [post()],
             Retry("5", "Internal Error")),
    SendCase("too-many-binds-status-10-retried-with-the-documented-name", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("10")))], [post()],
             Retry("10", "Too Many Existing Binds")),
    SendCase("bad-credentials-status-4-rejected", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("4", "Bad Credentials")))], [post()],
             Reject("4", "Bad Credentials")),
    SendCase("error-text-naming-the-secret-redacted", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("4", f"Bad Credentials: {API_KEY}/{API_SECRET}")))],
             [post()], Reject("4", "Bad Credentials: [redacted]/[redacted]")),
    SendCase("number-barred-status-7-rejected", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("7", "Number barred.")))], [post()],
             Reject("7", "Number barred.")),
    SendCase("no-credit-status-9-rejected-for-failover", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("9", "Partner quota exceeded")))], [post()],
             Reject("9", "Partner quota exceeded")),
    SendCase("demo-account-status-29-without-text-gets-its-name", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("29")))], [post()],
             Reject("29", "Non-Whitelisted Destination")),
    SendCase("undocumented-status-rejected-verbatim", MESSAGE, ACCOUNT,
             [Canned(200, answer(failed("101")))], [post()],
             Reject("101", "no error-text given")),
    SendCase("numeric-status-read-as-text", MESSAGE, ACCOUNT,
             [Canned(200, {"message-count": "1", "messages": [{"status": 15,
                                                                "error-text": "Illegal Sender"}]})],
             [post()], Reject("15", "Illegal Sender")),
    SendCase("partial-failure-accepts-the-parts-that-left", sms(text="x" * 200), ACCOUNT,
             [Canned(200, PARTIAL)], [post(text="x" * 200)],
             Accepted(("3295d748-4e14-4681-af78-166dca3c5aab",), raw=PARTIAL)),
    SendCase("all-parts-failed-one-permanently-rejected", sms(text="x" * 200), ACCOUNT,
             [Canned(200, answer(failed("1", "Throttled"), failed("12", "Message too long")))],
             [post(text="x" * 200)], Reject("12", "Message too long")),
    SendCase("200-not-json-rejected-not-retried", MESSAGE, ACCOUNT,
             [Canned(200, "<html>Bad Gateway</html>")], [post()],
             Reject("malformed_response",
                    "HTTP 200 without a messages list: <html>Bad Gateway</html>")),
    SendCase("200-without-messages-rejected", MESSAGE, ACCOUNT,
             [Canned(200, {"message-count": "0", "messages": []})], [post()],
             Reject("malformed_response",
                    'HTTP 200 without a messages list: {"message-count":"0","messages":[]}')),
    SendCase("http-401-rejected", MESSAGE, ACCOUNT, [Canned(401, "Unauthorized")], [post()],
             Reject("http_401", "Unauthorized")),
    SendCase("http-429-retried-with-retry-after", MESSAGE, ACCOUNT,
             [Canned(429, "Too Many Requests", {"Retry-After": "30"})], [post()],
             Retry("http_429", "Too Many Requests", 30.0)),
    SendCase("http-503-retried", MESSAGE, ACCOUNT, [Canned(503, "Service Unavailable")],
             [post()], Retry("http_503", "Service Unavailable")),
    SendCase("timeout-retried", MESSAGE, ACCOUNT, [Canned(error=httpx.ReadTimeout)], [post()],
             Retry("timeout", "ReadTimeout: connection reset by peer")),
    SendCase("connection-error-retried", MESSAGE, ACCOUNT, [Canned(error=httpx.ConnectError)],
             [post()], Retry("transport_error", "ConnectError: connection reset by peer")),
]


# --- webhooks ------------------------------------------------------------------------------------


def get(fields: dict[str, str], token: str | None = TOKEN, url: str = DLR_URL) -> WebhookRequest:
    """A GET webhook: Vonage's fields appended to the configured URL's query."""
    query = {**({"token": token} if token is not None else {}), **fields}
    base = url.split("?", 1)[0]
    return WebhookRequest(method="GET", url=f"{base}?{urlencode(query)}", headers={},
                          query=query, body=b"")


def post_form(fields: dict[str, str], token: str | None = TOKEN,
              url: str = DLR_URL) -> WebhookRequest:
    return _post(urlencode(fields).encode(), "application/x-www-form-urlencoded", token, url)


def post_json(fields: Any, token: str | None = TOKEN, url: str = DLR_URL) -> WebhookRequest:
    return _post(json.dumps(fields).encode(), "application/json", token, url)


def _post(body: bytes, content_type: str, token: str | None, url: str) -> WebhookRequest:
    query = {"token": token} if token is not None else {}
    base = url.split("?", 1)[0]
    return WebhookRequest(method="POST", url=base + (f"?{urlencode(query)}" if query else ""),
                          headers={"Content-Type": content_type}, query=query, body=body)


def receipt(status: str = "delivered", err_code: str = "0", **extra: str) -> dict[str, str]:
    """Vonage's documented receipt example, with its status and err-code changed."""
    return {"err-code": err_code, "message-timestamp": "2018-10-25 12:10:29",
            "messageId": "0B00000127FDBC63", "msisdn": "447547232824", "network-code": "23410",
            "price": "0.03330000", "scts": "1810251310", "status": status, "to": "Nexmo CLI",
            "api-key": API_KEY, **extra}


def inbound(**extra: str) -> dict[str, str]:
    return {"api-key": API_KEY, "msisdn": "447700900001", "to": "447700900000",
            "messageId": "0A0000000123ABCD1", "text": "Hello world", "type": "text",
            "keyword": "HELLO", "message-timestamp": "2020-01-01 12:00:00", **extra}


def signed(fields: dict[str, str], method: str = "md5hash",
           secret: str = SIGNATURE_SECRET) -> dict[str, str]:
    """``fields`` as Vonage signs them (the fake's own implementation of the algorithm)."""
    with_stamp = {**fields, "timestamp": "1582650446",
                  "nonce": "ec11dd3e-1e7f-4db5-9467-82b02cd223b9"}
    return {**with_stamp, "sig": vonage_signature(with_stamp, secret, method)}


def update(state: MessageState, word: str, code: str | None = None,
           detail: str | None = None) -> StatusUpdate:
    return StatusUpdate("0B00000127FDBC63", state, word, error_code=code, error_detail=detail)


SIGNED_MD5 = account(SIGNING, signed_webhooks=True)
SIGNED_SHA256 = account(SIGNING, signed_webhooks=True, signature_method="sha256")
SIGNED_SHA512 = account(SIGNING, signed_webhooks=True, signature_method="sha512")
HELLO = InboundMessage("0A0000000123ABCD1", "+447700900001", "+447700900000", "Hello world")
TAMPERED = {**signed(receipt("failed", "2")), "status": "delivered", "err-code": "0"}

WEBHOOK_CASES = [
    WebhookCase("receipt-post-json-delivered", post_json(receipt()), ACCOUNT,
                [update(MessageState.DELIVERED, "delivered")]),
    WebhookCase("receipt-post-form-failed-absent-subscriber", post_form(receipt("failed", "2")),
                ACCOUNT, [update(MessageState.FAILED, "failed", "2",
                                 "Absent Subscriber - Temporary")]),
    WebhookCase("receipt-get-accepted-is-sent", get(receipt("accepted")), ACCOUNT,
                [update(MessageState.SENT, "accepted")]),
    WebhookCase("receipt-buffered-is-sent", post_json(receipt("buffered")), ACCOUNT,
                [update(MessageState.SENT, "buffered")]),
    WebhookCase("receipt-expired-is-failed", post_json(receipt("expired", "1")), ACCOUNT,
                [update(MessageState.FAILED, "expired", "1", "Unknown")]),
    WebhookCase("receipt-rejected-dlt-content-filter", post_json(receipt("rejected", "52")),
                ACCOUNT, [update(MessageState.FAILED, "rejected", "52", "Content Filter")]),
    WebhookCase("receipt-unlisted-err-code-kept-without-text", post_json(receipt("failed", "77")),
                ACCOUNT, [update(MessageState.FAILED, "failed", "77")]),
    WebhookCase("receipt-status-word-read-case-insensitively", post_json(receipt("DELIVERED")),
                ACCOUNT, [update(MessageState.DELIVERED, "DELIVERED")]),
    WebhookCase("receipt-unknown-is-recorded-not-guessed", post_json(receipt("unknown", "1")),
                ACCOUNT, [UnknownStatus("0B00000127FDBC63", "unknown")]),
    WebhookCase("receipt-new-word-is-unknown-status", post_json(receipt("deleted")), ACCOUNT,
                [UnknownStatus("0B00000127FDBC63", "deleted")]),
    WebhookCase("inbound-post-form", post_form(inbound(), url=INBOUND_URL), ACCOUNT, [HELLO]),
    WebhookCase("inbound-get", get(inbound(), url=INBOUND_URL), ACCOUNT, [HELLO]),
    WebhookCase("inbound-unicode-post-json", post_json(inbound(text="Привет 👋", type="unicode",
                                                               keyword="ПРИВЕТ"), url=INBOUND_URL),
                ACCOUNT, [replace(HELLO, text="Привет 👋")]),
    WebhookCase("inbound-concatenated-part-is-its-own-message",
                post_form(inbound(text="part two", concat="true", **{
                    "concat-ref": "1", "concat-total": "2", "concat-part": "2"}), url=INBOUND_URL),
                ACCOUNT, [replace(HELLO, text="part two")]),
    WebhookCase("inbound-alphanumeric-sender-kept-as-is",
                post_form(inbound(msisdn="ACME"), url=INBOUND_URL), ACCOUNT,
                [replace(HELLO, from_number="ACME")]),
    WebhookCase("url-check-without-parameters-is-nothing", get({}), ACCOUNT, []),
    WebhookCase("signed-md5hash-form-receipt", post_form(signed(receipt("failed", "2"))),
                SIGNED_MD5, [update(MessageState.FAILED, "failed", "2",
                                    "Absent Subscriber - Temporary")]),
    WebhookCase("signed-sha256-json-receipt-upper-case-sig",
                post_json(signed(receipt(), "sha256")), SIGNED_SHA256,
                [update(MessageState.DELIVERED, "delivered")]),
    WebhookCase("signed-sha512-get-receipt", get(signed(receipt(), "sha512")), SIGNED_SHA512,
                [update(MessageState.DELIVERED, "delivered")]),
    WebhookCase("signed-get-inbound-whose-sig-covers-our-token",
                get(signed({"token": TOKEN, **inbound()}), url=INBOUND_URL), SIGNED_MD5, [HELLO]),
    WebhookCase("signed-webhooks-let-the-empty-url-check-through-on-its-token", get({}),
                SIGNED_MD5, []),
    WebhookCase("sig-ignored-when-signed-webhooks-are-off", post_json(signed(receipt(), "sha256")),
                account(SIGNING), [update(MessageState.DELIVERED, "delivered")]),
    WebhookCase("receipt-without-message-id-is-payload-error",
                post_json({k: v for k, v in receipt().items() if k != "messageId"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("inbound-without-msisdn-is-payload-error",
                post_form({k: v for k, v in inbound().items() if k != "msisdn"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("unrelated-parameters-are-payload-error", post_form({"hello": "world"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("broken-json-is-payload-error", _post(b"{", "application/json", TOKEN, DLR_URL),
                ACCOUNT, WebhookPayloadError),
    WebhookCase("json-array-is-payload-error", post_json([receipt()]), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing-token-is-refused", post_json(receipt(), token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", post_json(receipt(), token="whk_guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("account-without-token-refuses-everything", post_json(receipt(), token=""),
                replace(ACCOUNT, webhook_token=""), WebhookVerificationError),
    WebhookCase("signed-webhooks-refuse-a-missing-sig", post_json(receipt()), SIGNED_MD5,
                WebhookVerificationError),
    WebhookCase("signed-webhooks-refuse-a-tampered-body", post_form(TAMPERED), SIGNED_MD5,
                WebhookVerificationError),
    WebhookCase("signed-webhooks-refuse-another-secret",
                post_json(signed(receipt(), secret="another-signature-secret")), SIGNED_MD5,
                WebhookVerificationError),
    WebhookCase("signed-webhooks-refuse-another-method", post_json(signed(receipt(), "sha1")),
                SIGNED_SHA256, WebhookVerificationError),
    WebhookCase("signed-webhooks-without-a-signature-secret-refuse",
                post_json(signed(receipt())), account(signed_webhooks=True),
                WebhookVerificationError),
    WebhookCase("signed-webhooks-refuse-an-unreadable-body",
                _post(b"\xff\xfe", "application/x-www-form-urlencoded", TOKEN, DLR_URL),
                SIGNED_MD5, WebhookVerificationError),
]

VERIFIED_CASES = [case for case in WEBHOOK_CASES if case.events is not WebhookVerificationError]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda case: case.label)
async def test_send(case: SendCase, caplog: pytest.LogCaptureFixture) -> None:
    await run_send_case(vonage, case, caplog)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(vonage, case)


@pytest.mark.parametrize("case", VERIFIED_CASES, ids=lambda case: case.label)
def test_webhook_forgeries_are_refused(case: WebhookCase) -> None:
    assert_forgeries_rejected(vonage, case)


@pytest.mark.parametrize(("method", "expected"), [
    ("md5hash", "6af838ef94998832dbfc29020b564830"),
    ("md5", "c15c21ced558c93a226c305f58f902f2"),
    ("sha1", "3e19a4e6880fdc2c1426bfd0587c98b9532f0210"),
    ("sha256", "a321e824b9b816be7c3f28859a31749a098713d39f613c80d455bbaffae1cd24"),
    ("sha512", "812a18f76680fa0fe1b8bd9ee1625466ceb1bd96242e4d050d2cfd9a7b40166c63ed26ec9702168781"
               "b6edcf1633db8ff95af9341701004eec3fcf9550572ee8"),
])
def test_signature_matches_the_vonage_sdk_vectors(method: vonage.SignatureMethod,
                                                  expected: str) -> None:
    # vonage-python-sdk v3 tests/test_client.py: params a=1, b=2, timestamp, secret "secret".
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage.signature(params, "secret", method) == expected


def test_signature_replaces_ampersand_and_equals_in_values() -> None:
    assert vonage.signature({"text": "a&b=c"}, "s", "md5hash") == \
        vonage.signature({"text": "a_b_c"}, "s", "md5hash")


# --- balance and sender names --------------------------------------------------------------------


async def query(handler: Any, call: Any, account_: AccountContext = ACCOUNT) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await call(account_, http)


async def test_balance_is_the_value_verbatim_in_eur_with_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text='{"value": 10.17127500, "autoReload": false}',
                              headers={"content-type": "application/json"})

    assert await query(handler, vonage.balance) == Balance("10.17127500", "EUR")
    [request] = seen
    assert (request.method, request.url.path, dict(request.url.params)) == (
        "GET", "/account/get-balance", {})
    assert request.headers["authorization"] == httpx.BasicAuth(API_KEY, API_SECRET)._auth_header


async def test_balance_bad_credentials_is_a_reject() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error-code": "401",
                                         "error-code-label": "authentication failed"})

    with pytest.raises(ProviderError) as raised:
        await query(handler, vonage.balance)
    assert raised.value.failure == Reject(
        "http_401", '{"error-code":"401","error-code-label":"authentication failed"}')


async def test_balance_server_error_is_a_retry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="Service Unavailable", headers={"Retry-After": "5"})

    with pytest.raises(ProviderError) as raised:
        await query(handler, vonage.balance)
    assert raised.value.failure == Retry("http_503", "Service Unavailable", 5.0)


async def test_balance_without_a_number_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"autoReload": False})

    with pytest.raises(ProviderError) as raised:
        await query(handler, vonage.balance)
    assert raised.value.failure == Reject(
        "malformed_response", 'get-balance answered no numeric value: {"autoReload":false}')


async def test_balance_transport_error_leaks_neither_url_nor_secret() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} as {API_SECRET}", request=request)

    with pytest.raises(ProviderError) as raised:
        await query(handler, vonage.balance)
    assert raised.value.failure == Retry("transport_error",
                                         "ConnectError: cannot reach [url] as [redacted]")
    assert raised.value.__suppress_context__


async def test_balance_with_invalid_stored_credentials_makes_no_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    broken = replace(ACCOUNT, credentials={"api_key": API_KEY})
    with pytest.raises(ProviderError) as raised:
        await query(handler, vonage.balance, broken)
    assert raised.value.failure == Reject("invalid_credentials", "api_secret: Field required")


async def test_sender_names_are_unsupported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    assert await query(handler, vonage.sender_names) == Unsupported()


# --- stored models -------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    pytest.param({"api_key": "abcd1234", "api_secret": "abcdef0123456789"}, id="documented"),
    pytest.param({"api_key": "abcd1234", "api_secret": "Ex4mple-s3cret!"}, id="rotated-secret"),
    pytest.param({"api_key": "abcd1234", "api_secret": "abcdef0123456789",
                  "signature_secret": SIGNATURE_SECRET}, id="with-signature-secret"),
])
def test_credentials_accepted(credentials: dict[str, str]) -> None:
    vonage.Credentials.model_validate(credentials)


@pytest.mark.parametrize("credentials", [
    pytest.param({}, id="missing"),
    pytest.param({"api_key": "abcd1234"}, id="no-secret"),
    pytest.param({"api_key": "abcd123", "api_secret": API_SECRET}, id="key-too-short"),
    pytest.param({"api_key": "abcd-123", "api_secret": API_SECRET}, id="key-with-dash"),
    pytest.param({"api_key": API_KEY, "api_secret": "abc12"}, id="secret-too-short"),
    pytest.param({"api_key": API_KEY, "api_secret": "abc def 123"}, id="secret-with-space"),
    pytest.param({"api_key": API_KEY, "api_secret": API_SECRET + "\n"}, id="line-break"),
    pytest.param({"api_key": API_KEY, "api_secret": API_SECRET, "signature_secret": "short"},
                 id="signature-secret-too-short"),
    pytest.param({"api_key": API_KEY, "api_secret": API_SECRET, "from": "AcmeInc"},
                 id="unknown-field"),
])
def test_credentials_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        vonage.Credentials.model_validate(credentials)


@pytest.mark.parametrize("config", [
    pytest.param({}, id="defaults"),
    pytest.param({"signature_method": "sha512", "sign_requests": True, "signed_webhooks": True},
                 id="everything"),
])
def test_config_accepted(config: dict[str, Any]) -> None:
    vonage.Config.model_validate(config)


@pytest.mark.parametrize("config", [
    pytest.param({"signature_method": "SHA256"}, id="method-spelt-differently"),
    pytest.param({"signature_method": "hmac"}, id="unknown-method"),
    pytest.param({"sign_requests": "sometimes"}, id="not-a-boolean"),
    pytest.param({"sender": "AcmeInc"}, id="unknown-field"),
])
def test_config_refused(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        vonage.Config.model_validate(config)


# --- against the fake, over a real socket --------------------------------------------------------


class Receiver:
    """A webhook endpoint on loopback that records what it is sent, as WebhookRequests."""

    def __init__(self) -> None:
        self.received: list[WebhookRequest] = []
        self.app = Starlette(routes=[Route("/dlr", self._receive, methods=["GET", "POST"]),
                                     Route("/inbound", self._receive, methods=["GET", "POST"])])

    async def _receive(self, request: Request) -> Response:
        self.received.append(WebhookRequest(
            method=request.method, url=str(request.url), headers=dict(request.headers),
            query=dict(request.query_params), body=await request.body()))
        return Response(status_code=204)

    async def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


async def test_signed_send_and_signed_receipts_through_the_fake_over_loopback() -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app) as receiver_url:
        dlr_url = f"{receiver_url}/dlr?token={TOKEN}"
        fake = FakeVonage({API_KEY: API_SECRET}, signature_secrets={API_KEY: SIGNATURE_SECRET},
                          signature_method="sha256", sign_webhooks=True, dlr_method="POST-JSON")
        fake.script_delivery("447700900000", "failed", "2")
        with serve_in_thread(fake.app) as base_url:
            live = replace(account(SIGNING, sign_requests=True, signed_webhooks=True,
                                   signature_method="sha256"),
                           base_url=base_url, webhook_url_dlr=dlr_url)
            async with httpx.AsyncClient() as http:
                outcome = await vonage.send(sms(text="y" * 200, segments=2), live, http, now=NOW)
            await receiver.wait_for(2)

    [sent] = fake.sends
    assert sent.signed
    assert "api_secret" not in sent.form
    assert sent.form["callback"] == dlr_url
    assert isinstance(outcome, Accepted)
    assert outcome.provider_ids == sent.message_ids
    assert len(sent.message_ids) == 2
    events = []
    for webhook in receiver.received:
        vonage.verify_webhook(webhook, live)
        events.extend(vonage.parse_webhook(webhook, live))
    assert sorted(events, key=lambda e: e.provider_message_id) == [
        StatusUpdate(message_id, MessageState.FAILED, "failed", error_code="2",
                     error_detail="Absent Subscriber - Temporary")
        for message_id in sorted(sent.message_ids)]
    forged = replace(receiver.received[0], body=receiver.received[0].body.replace(
        b'"failed"', b'"delivered"'))
    with pytest.raises(WebhookVerificationError):
        vonage.verify_webhook(forged, live)


async def test_get_receipts_and_inbound_through_the_fake_over_loopback() -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app) as receiver_url:
        dlr_url = f"{receiver_url}/dlr?token={TOKEN}"
        inbound_url = f"{receiver_url}/inbound?token={TOKEN}"
        fake = FakeVonage({API_KEY: API_SECRET}, signature_secrets={API_KEY: SIGNATURE_SECRET},
                          sign_webhooks=True, dlr_method="GET")
        with serve_in_thread(fake.app) as base_url:
            live = replace(account(SIGNING, signed_webhooks=True), base_url=base_url,
                           webhook_url_dlr=dlr_url, webhook_url_inbound=inbound_url)
            async with httpx.AsyncClient() as http:
                outcome = await vonage.send(MESSAGE, live, http, now=NOW)
            await receiver.wait_for(1)
            await fake.send_inbound(inbound_url, api_key=API_KEY, msisdn="447700900001",
                                    to="447700900000", text="STOP please")

    [sent] = fake.sends
    assert outcome == Accepted(sent.message_ids, raw={
        "message-count": "1", "messages": [{
            "to": "447700900000", "message-id": sent.message_ids[0], "status": "0",
            "remaining-balance": "10.13797500", "message-price": "0.03330000",
            "network": "23410", "client-ref": "msg_01"}]})
    assert sent.form == form(callback=dlr_url)
    receipt_request, inbound_request = receiver.received
    assert receipt_request.method == "GET"
    assert urlsplit(receipt_request.url).path == "/dlr"
    for webhook in receiver.received:
        vonage.verify_webhook(webhook, live)
    [status] = vonage.parse_webhook(receipt_request, live)
    assert status == StatusUpdate(sent.message_ids[0], MessageState.DELIVERED, "delivered")
    [message] = vonage.parse_webhook(inbound_request, live)
    assert isinstance(message, InboundMessage)
    assert (message.from_number, message.to_number, message.text) == (
        "+447700900001", "+447700900000", "STOP please")


async def test_fake_refuses_a_wrong_secret_as_vonage_does() -> None:
    fake = FakeVonage({API_KEY: API_SECRET})
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url,
                       credentials={"api_key": API_KEY, "api_secret": "Wr0ngSecret12345"})
        async with httpx.AsyncClient() as http:
            outcome = await vonage.send(MESSAGE, live, http, now=NOW)
            with pytest.raises(ProviderError) as raised:
                await vonage.balance(live, http)
            balance = await vonage.balance(replace(live, credentials=ACCOUNT.credentials), http)
    assert outcome == Reject("4", "Bad Credentials")
    assert raised.value.failure == Reject(
        "http_401", '{"error-code":"401","error-code-label":"authentication failed"}')
    assert balance == Balance("10.17127500", "EUR")
    assert fake.sends == []


async def test_fake_throttling_and_barred_numbers_map_to_retry_and_reject() -> None:
    fake = FakeVonage({API_KEY: API_SECRET})
    fake.status_next(1, "1", "Throttled")
    fake.refuse("447700900666", "7", "Number barred.")
    with serve_in_thread(fake.app) as base_url:
        live = replace(ACCOUNT, base_url=base_url)
        async with httpx.AsyncClient() as http:
            throttled = await vonage.send(MESSAGE, live, http, now=NOW)
            barred = await vonage.send(sms(to="+447700900666"), live, http, now=NOW)
            accepted = await vonage.send(MESSAGE, live, http, now=NOW)
    assert throttled == Retry("1", "Throttled")
    assert barred == Reject("7", "Number barred.")
    assert isinstance(accepted, Accepted)
    assert [sent.to for sent in fake.sends] == ["447700900000"]


_: SmsProvider = vonage
