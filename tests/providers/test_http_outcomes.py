"""HTTP answers and transport errors to send outcomes, credential redaction, and the invariants
the provider contract's data types enforce."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from tidings.domain.states import REPORTABLE, MessageState
from tidings.providers._http import (
    REASON_LIMIT,
    failure_from_response,
    outcome_from_response,
    outcome_from_transport_error,
    redact,
)
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Reject,
    Retry,
    SendOutcome,
    StatusUpdate,
    WebhookRequest,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)  # a Wednesday
REQUEST = httpx.Request("POST", "https://api.example.test/x")
SECRET = "s3cr3t/t0ken+key="
SECRET_URLENCODED = "s3cr3t%2Ft0ken%2Bkey%3D"


def respond(status: int, text: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, text=text, request=REQUEST)


def accept_sid(response: httpx.Response) -> SendOutcome:
    """A provider's success parser, Twilio-shaped: the id is the body's ``sid``."""
    return Accepted((response.json()["sid"],))


def fast2sms_like(response: httpx.Response) -> SendOutcome:
    """A provider that answers 200 to failures too, with ``return: false`` and its own code."""
    body = response.json()
    if body["return"]:
        return Accepted((body["request_id"],), raw=body)
    return Reject(str(body["status_code"]), body["message"])


# --- status classes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "expected"), [
    pytest.param(200, '{"sid": "SM1"}', Accepted(("SM1",)), id="200-accepted"),
    pytest.param(201, '{"sid": "SM2"}', Accepted(("SM2",)), id="201-accepted"),
    pytest.param(202, '{"sid": "SM3"}', Accepted(("SM3",)), id="202-accepted"),
    pytest.param(301, "Moved", Reject("http_301", "Moved"), id="301-reject"),
    pytest.param(400, '{"code": 21211, "message": "Invalid \'To\' Phone Number"}',
                 Reject("http_400", '{"code": 21211, "message": "Invalid \'To\' Phone Number"}'),
                 id="400-reject-body-verbatim"),
    pytest.param(401, "Authenticate", Reject("http_401", "Authenticate"), id="401-reject"),
    pytest.param(403, "Forbidden", Reject("http_403", "Forbidden"), id="403-reject"),
    pytest.param(404, "no such account", Reject("http_404", "no such account"), id="404-reject"),
    pytest.param(408, "slow", Retry("http_408", "slow"), id="408-retry"),
    pytest.param(422, "bad dlt template", Reject("http_422", "bad dlt template"),
                 id="422-reject"),
    pytest.param(429, "Too many", Retry("http_429", "Too many"), id="429-retry-no-header"),
    pytest.param(500, "oops", Retry("http_500", "oops"), id="500-retry"),
    pytest.param(502, "bad gateway", Retry("http_502", "bad gateway"), id="502-retry"),
    pytest.param(503, "down", Retry("http_503", "down"), id="503-retry"),
    pytest.param(504, "gateway timeout", Retry("http_504", "gateway timeout"), id="504-retry"),
    pytest.param(503, "", Retry("http_503", "Service Unavailable"),
                 id="empty-body-gives-reason-phrase"),
    pytest.param(400, "  padded\n", Reject("http_400", "padded"), id="body-is-stripped"),
])
def test_each_status_class_maps_to_its_outcome(
    status: int, body: str, expected: SendOutcome
) -> None:
    response = respond(status, body)
    assert outcome_from_response(response, now=NOW, accepted=accept_sid) == expected


@pytest.mark.parametrize(("status", "retry_after", "expected"), [
    pytest.param(429, "30", 30.0, id="429-seconds"),
    pytest.param(429, "Wed, 01 Jan 2025 12:01:30 GMT", 90.0, id="429-http-date"),
    pytest.param(503, "120", 120.0, id="503-seconds"),
    pytest.param(503, "Wed, 01 Jan 2025 12:05:00 GMT", 300.0, id="503-http-date"),
    pytest.param(503, "Wed, 01 Jan 2025 11:00:00 GMT", 0.0, id="503-date-in-the-past"),
    pytest.param(500, "7", 7.0, id="500-seconds"),
    pytest.param(408, "5", 5.0, id="408-seconds"),
    pytest.param(429, "soon", None, id="unreadable-is-none"),
    pytest.param(429, "1.5", None, id="fractional-is-none"),
])
def test_retry_after_is_honoured_on_retryable_answers(
    status: int, retry_after: str, expected: float | None
) -> None:
    response = respond(status, "busy", {"Retry-After": retry_after})
    outcome = outcome_from_response(response, now=NOW, accepted=accept_sid)
    assert outcome == Retry(f"http_{status}", "busy", expected)


def test_retry_after_on_a_rejected_answer_is_dropped() -> None:
    response = respond(400, "bad number", {"Retry-After": "30"})
    assert outcome_from_response(response, now=NOW, accepted=accept_sid) == Reject(
        "http_400", "bad number")


def test_a_2xx_never_reaches_the_failure_mapping() -> None:
    assert failure_from_response(respond(200, "{}"), now=NOW) is None


# --- the provider's own parser -------------------------------------------------------------------


FAST2SMS_OK = {"return": True, "request_id": "req-9", "message": ["SMS sent successfully."]}
FAST2SMS_ERROR = {"return": False, "status_code": 412, "message": "Invalid Authentication"}


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(FAST2SMS_OK, Accepted(("req-9",), raw=FAST2SMS_OK), id="return-true-accepted"),
    pytest.param(FAST2SMS_ERROR, Reject("412", "Invalid Authentication"),
                 id="return-false-rejected-with-provider-code"),
])
def test_a_200_is_judged_by_the_provider_parser(
    body: dict[str, object], expected: SendOutcome
) -> None:
    response = respond(200, json.dumps(body))
    assert outcome_from_response(response, now=NOW, accepted=fast2sms_like) == expected


def test_a_parser_reject_reason_is_redacted_and_cut() -> None:
    body = {"return": False, "status_code": 412, "message": f"bad key {SECRET} " + "x" * 600}
    outcome = outcome_from_response(respond(200, json.dumps(body)), now=NOW,
                                    accepted=fast2sms_like, secrets=[SECRET])
    assert isinstance(outcome, Reject)
    assert outcome.code == "412"
    assert outcome.reason.startswith("bad key [redacted] xxx")
    assert len(outcome.reason) == REASON_LIMIT


# --- transport errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "expected"), [
    pytest.param(httpx.ConnectTimeout("timed out", request=REQUEST),
                 Retry("timeout", "ConnectTimeout: timed out"), id="connect-timeout"),
    pytest.param(httpx.ReadTimeout("The read operation timed out", request=REQUEST),
                 Retry("timeout", "ReadTimeout: The read operation timed out"), id="read-timeout"),
    pytest.param(httpx.WriteTimeout("", request=REQUEST), Retry("timeout", "WriteTimeout"),
                 id="write-timeout-no-message"),
    pytest.param(httpx.PoolTimeout("", request=REQUEST), Retry("timeout", "PoolTimeout"),
                 id="pool-timeout"),
    pytest.param(httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST),
                 Retry("transport_error", "ConnectError: [Errno 111] Connection refused"),
                 id="connect-error"),
    pytest.param(httpx.ReadError("connection reset", request=REQUEST),
                 Retry("transport_error", "ReadError: connection reset"), id="read-error"),
    pytest.param(httpx.WriteError("broken pipe", request=REQUEST),
                 Retry("transport_error", "WriteError: broken pipe"), id="write-error"),
    pytest.param(httpx.RemoteProtocolError("Server disconnected", request=REQUEST),
                 Retry("transport_error", "RemoteProtocolError: Server disconnected"),
                 id="remote-protocol-error"),
    pytest.param(httpx.ProxyError("407 Proxy Authentication Required", request=REQUEST),
                 Retry("transport_error", "ProxyError: 407 Proxy Authentication Required"),
                 id="proxy-error"),
    pytest.param(httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'.",
                                           request=REQUEST),
                 Reject("unsendable", "UnsupportedProtocol: Request URL has an unsupported "
                        "protocol '[url]"), id="unsupported-protocol-rejects"),
    pytest.param(httpx.LocalProtocolError("Illegal header value", request=REQUEST),
                 Reject("unsendable", "LocalProtocolError: Illegal header value"),
                 id="local-protocol-error-rejects"),
])
def test_transport_errors_map_to_retry_or_unsendable(
    exc: httpx.TransportError, expected: SendOutcome
) -> None:
    assert outcome_from_transport_error(exc) == expected


def test_a_transport_error_reason_carries_no_url_and_no_secret() -> None:
    exc = httpx.ConnectError(
        f"cannot reach https://user:{SECRET}@api.example.test/send?key={SECRET} (dns) {SECRET}",
        request=REQUEST,
    )
    outcome = outcome_from_transport_error(exc, secrets=[SECRET])
    assert outcome == Retry("transport_error", "ConnectError: cannot reach [url] (dns) [redacted]")


# --- redaction -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "reason"), [
    pytest.param(f'{{"message": "Authentication failed for key {SECRET}"}}',
                 '{"message": "Authentication failed for key [redacted]"}', id="verbatim"),
    pytest.param(f"invalid credentials in /send?apikey={SECRET_URLENCODED}&to=1",
                 "invalid credentials in /send?apikey=[redacted]&to=1", id="url-encoded"),
    pytest.param(f"token={SECRET} and again {SECRET}",
                 "token=[redacted] and again [redacted]", id="every-occurrence"),
])
def test_a_secret_echoed_in_a_401_body_is_redacted(body: str, reason: str) -> None:
    response = respond(401, body)
    outcome = outcome_from_response(response, now=NOW, accepted=accept_sid, secrets=[SECRET])
    assert outcome == Reject("http_401", reason)


def test_redaction_happens_before_the_cut_so_no_prefix_survives() -> None:
    body = "x" * (REASON_LIMIT - 4) + SECRET
    outcome = outcome_from_response(respond(401, body), now=NOW, accepted=accept_sid,
                                    secrets=[SECRET])
    assert isinstance(outcome, Reject)
    assert outcome.reason == "x" * (REASON_LIMIT - 4) + "[red"
    assert SECRET[:4] not in outcome.reason


@pytest.mark.parametrize(("text", "secrets", "expected"), [
    pytest.param("key=abc", [], "key=abc", id="no-secrets-unchanged"),
    pytest.param("key=abc", ["", "abc"], "key=[redacted]", id="empty-secret-ignored"),
    pytest.param("a b+c / a+b%2Bc / a%20b%2Bc", ["a b+c"],
                 "[redacted] / [redacted] / [redacted]", id="verbatim-form-and-percent"),
    pytest.param("sid=AC123 token=AC123xyz", ["AC123", "AC123xyz"],
                 "sid=[redacted] token=[redacted]", id="longer-secret-first"),
    pytest.param("a.c abc", ["a.c"], "[redacted] abc", id="secret-is-not-a-regex"),
])
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


def test_an_account_context_lists_its_secrets_and_hides_them_from_repr() -> None:
    account = AccountContext(
        account_id="acc_1", base_url="https://api.example.test",
        credentials={"account_sid": "AC123", "auth_token": SECRET, "unused": ""},
        config={}, webhook_url_dlr="https://gw.test/dlr", webhook_url_inbound="https://gw.test/in",
        webhook_token="whtok",
    )
    assert account.secrets() == ("AC123", SECRET, "whtok")
    assert all(secret not in repr(account) for secret in account.secrets())


# --- contract data types -------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(set(MessageState) - REPORTABLE))
def test_a_status_update_refuses_a_state_a_report_cannot_carry(state: MessageState) -> None:
    with pytest.raises(ValueError, match="cannot say"):
        StatusUpdate("SM1", state, "whatever")


@pytest.mark.parametrize("state", sorted(REPORTABLE))
def test_a_status_update_takes_every_reportable_state(state: MessageState) -> None:
    assert StatusUpdate("SM1", state, "word").state is state


def test_a_status_update_coerces_a_state_string() -> None:
    update = StatusUpdate("SM1", "delivered", "DELIVRD")  # type: ignore[arg-type]
    assert update.state is MessageState.DELIVERED


def test_a_status_update_refuses_a_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        StatusUpdate("SM1", MessageState.SENT, "sent", occurred_at=datetime(2025, 1, 1))


def test_a_webhook_request_lower_cases_header_names() -> None:
    request = WebhookRequest("POST", "https://gw.test/dlr", {"X-Twilio-Signature": "sig"}, {},
                             b"")
    assert dict(request.headers) == {"x-twilio-signature": "sig"}


@pytest.mark.parametrize("retry_after", [-1.0, float("nan"), float("inf")])
def test_a_retry_refuses_a_wait_that_is_not_a_duration(retry_after: float) -> None:
    with pytest.raises(ValueError, match="retry_after"):
        Retry("x", "y", retry_after)


def test_accepted_stores_ids_as_a_tuple() -> None:
    assert Accepted(["a", "b"]).provider_ids == ("a", "b")  # type: ignore[arg-type]
