"""The ANDROID provider: what the SMS Gateway for Android app posts to the app's inbound URL
(its ``sms:received`` webhook envelope) becomes inbound messages; every other event is nothing;
the per-app token proves the request. Sends are refused: phones pull their messages."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.harness.providers import (
    NOW,
    WebhookCase,
    assert_forgeries_rejected,
    run_webhook_case,
)
from tidings.providers.base import (
    AccountContext,
    InboundMessage,
    OutboundSms,
    Reject,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.sms import android

TOKEN = "whk_android_token"
INBOUND_URL = "https://gw.example.test/sms/v1/webhooks/app_phones/inbound/"
ACCOUNT = AccountContext(
    account_id="app_phones", base_url=android.default_base_url, credentials={}, config={},
    webhook_url_dlr="https://gw.example.test/sms/v1/webhooks/app_phones/dlr/",
    webhook_url_inbound=INBOUND_URL, webhook_token=TOKEN)
RECEIVED_AT = datetime(2024, 6, 7, 11, 41, 31, tzinfo=UTC)


def posted(envelope: Any, token: str | None = TOKEN) -> WebhookRequest:
    """The app's webhook call: a JSON POST with its user agent and signature headers."""
    query = {"token": token} if token is not None else {}
    body = json.dumps(envelope).encode()
    return WebhookRequest(
        method="POST", url=INBOUND_URL + (f"?token={token}" if token is not None else ""),
        headers={"content-type": "application/json", "user-agent": "me.capcom.smsgateway/1.5",
                 "x-signature": "ab" * 32, "x-timestamp": "1717760491"},
        query=query, body=body)


def envelope(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"id": "Ey6ECgOkVVFjz3CL48B8C", "webhookId": "LreFUt-Z3sSq0JufY9uWB",
            "deviceId": "0Ow5tHTHBmyy4VhqcHRsV", "event": event, "payload": payload}


RECEIVED = {"messageId": "abc123", "message": "Android is always a good choice.",
            "phoneNumber": "+79990001234", "simNumber": 1,
            "receivedAt": "2024-06-07T11:41:31.000Z"}

WEBHOOK_CASES = [
    WebhookCase("sms-received-is-inbound", posted(envelope("sms:received", RECEIVED)), ACCOUNT,
                [InboundMessage("0Ow5tHTHBmyy4VhqcHRsV:abc123", "+79990001234", "",
                                "Android is always a good choice.", RECEIVED_AT)]),
    WebhookCase("recipient-given-is-the-to-number",
                posted(envelope("sms:received", {**RECEIVED, "recipient": "+79995556677"})),
                ACCOUNT,
                [InboundMessage("0Ow5tHTHBmyy4VhqcHRsV:abc123", "+79990001234",
                                "+79995556677", "Android is always a good choice.",
                                RECEIVED_AT)]),
    WebhookCase("data-received-keeps-the-base64",
                posted(envelope("sms:data-received",
                                {"messageId": "d1", "data": "SGVsbG8=", "phoneNumber": "+7999",
                                 "receivedAt": "2024-06-07T11:41:31Z"})), ACCOUNT,
                [InboundMessage("0Ow5tHTHBmyy4VhqcHRsV:d1", "+7999", "", "SGVsbG8=",
                                RECEIVED_AT)]),
    WebhookCase("batch-received-is-one-inbound-each",
                posted(envelope("sms:batch:received", {"messages": [
                    {**RECEIVED, "messageId": "m1"}, {**RECEIVED, "messageId": "m2"}]})),
                ACCOUNT,
                [InboundMessage("0Ow5tHTHBmyy4VhqcHRsV:m1", "+79990001234", "",
                                "Android is always a good choice.", RECEIVED_AT),
                 InboundMessage("0Ow5tHTHBmyy4VhqcHRsV:m2", "+79990001234", "",
                                "Android is always a good choice.", RECEIVED_AT)]),
    WebhookCase("naive-received-at-is-utc",
                posted(envelope("sms:received",
                                {**RECEIVED, "receivedAt": "2024-06-07T11:41:31"})), ACCOUNT,
                [InboundMessage("0Ow5tHTHBmyy4VhqcHRsV:abc123", "+79990001234", "",
                                "Android is always a good choice.", RECEIVED_AT)]),
    WebhookCase("sms-sent-is-nothing",
                posted(envelope("sms:sent", {"messageId": "x", "phoneNumber": "+7999",
                                             "sentAt": "2024-06-07T11:41:31Z",
                                             "partsCount": 1})), ACCOUNT, []),
    WebhookCase("system-ping-is-nothing",
                posted(envelope("system:ping", {"health": {"status": "pass"}})), ACCOUNT, []),
    WebhookCase("received-without-message-is-payload-error",
                posted(envelope("sms:received", {"messageId": "x", "phoneNumber": "+7999"})),
                ACCOUNT, WebhookPayloadError),
    WebhookCase("bad-received-at-is-payload-error",
                posted(envelope("sms:received", {**RECEIVED, "receivedAt": "yesterday"})),
                ACCOUNT, WebhookPayloadError),
    WebhookCase("batch-without-list-is-payload-error",
                posted(envelope("sms:batch:received", {"messages": "no"})), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("no-envelope-is-payload-error", posted({"message": "hi"}), ACCOUNT,
                WebhookPayloadError),
    WebhookCase("missing-token-is-refused", posted(envelope("sms:received", RECEIVED),
                                                   token=None), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("wrong-token-is-refused", posted(envelope("sms:received", RECEIVED),
                                                 token="guess"), ACCOUNT,
                WebhookVerificationError),
    WebhookCase("account-without-token-refuses-everything",
                posted(envelope("sms:received", RECEIVED), token=""),
                replace(ACCOUNT, webhook_token=""), WebhookVerificationError),
]


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: case.label)
def test_webhook(case: WebhookCase) -> None:
    run_webhook_case(android, case)


def test_a_body_that_is_not_json_is_a_payload_error() -> None:
    request = replace(posted({}), body=b"{not json")
    with pytest.raises(WebhookPayloadError):
        android.parse_webhook(request, ACCOUNT)


def test_forged_tokens_are_refused() -> None:
    assert_forgeries_rejected(android, WEBHOOK_CASES[0])


async def test_send_is_refused_without_a_request() -> None:
    def no_request(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    message = OutboundSms(message_id="m1", to="+79990001234", sender_id=None, text="hi",
                          encoding="GSM-7", segments=1, dlt_entity_id=None,
                          dlt_template_id=None, status_callback_url=None, idempotency_key="m1")
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_request)) as http:
        outcome = await android.send(message, ACCOUNT, http, now=NOW)
    assert outcome == Reject("pull_only", "Android apps deliver through their phones, which "
                                          "pull messages")


@pytest.mark.parametrize(("config", "error"), [
    ({}, None),
    ({"default_region": "gb", "privacy_hashing": True, "hashing_delay_seconds": 0}, None),
    ({"default_region": "R1"}, "two-letter region"),
    ({"max_pending_per_device": 0}, "greater than or equal to 1"),
    ({"sender": "x"}, "Extra inputs are not permitted"),
])
def test_config_is_validated(config: dict[str, Any], error: str | None) -> None:
    if error is None:
        android.Config.model_validate(config)
        return
    with pytest.raises(ValueError, match=error):
        android.Config.model_validate(config)
