"""Vonage SMS API (the legacy Nexmo SMS API on ``rest.nexmo.com``; not the Messages API).

Docs: https://developer.vonage.com/en/api/sms (send, OpenAPI ``definitions/sms.yml`` v1.0.10),
https://developer.vonage.com/messaging/sms/guides/troubleshooting-sms and
https://developer.vonage.com/api-errors/sms (status codes),
https://developer.vonage.com/messaging/sms/guides/delivery-receipts (receipts),
https://developer.vonage.com/getting-started/concepts/signing-messages (signatures),
https://developer.vonage.com/en/api/account (balance).

**Auth.** ``api_key`` and ``api_secret`` as form fields of the send request (as the OpenAPI
description documents them). With ``sign_requests`` the secret is not sent: ``api_key``,
``timestamp`` and ``sig`` are, the signature computed with the account's signature secret (a
request may not carry both, status 32). The balance query uses HTTP Basic ``api_key:api_secret``,
as vonage-python-sdk v4 does, so no secret ever sits in a URL.

**Send.** ``POST /sms/json``, ``application/x-www-form-urlencoded``: ``from`` (the message's
sender; a number loses its ``+``), ``to`` (E.164 digits without ``+``), ``text``, ``type=unicode``
for a UCS-2 text, ``client-ref`` (our message id, when it fits Vonage's 40 characters),
``callback`` (the message's ``status_callback_url``, else the account's DLR URL, only when it fits
in ``CALLBACK_LIMIT`` characters: a longer one is left out and receipts go to the dashboard's
"Delivery receipts" URL, which must then be the account's DLR URL with its ``?token=``) and, for
India, ``entity-id``/``content-id`` (the DLT entity and template ids). Vonage answers **HTTP 200
whatever happened** with one entry per SMS part::

    {"message-count": "2", "messages": [{"to", "message-id", "status": "0", "remaining-balance",
      "message-price", "network", "client-ref"?}, ...]}    (a failed part: status, error-text)

    answer                                     outcome
    200, at least one part with status "0"     Accepted(message-id of every "0" part, raw=body);
                                               failed parts stay in raw (the rest has left, so
                                               sending again would duplicate it)
    200, every part failed, all with status    Retry(status, error-text, Retry-After if any)
      1 (throttled), 5 (internal error) or
      10 (too many binds)
    200, every part failed, any other status   Reject(the first such status, error-text): the
                                               rest of SEND_ERRORS (9 is "no credit": failover),
                                               and any status Vonage does not document
    200 without a messages list                Reject("malformed_response"): never retried here
    408, 429, 5xx, timeout, connection error   Retry (tidings.providers._http)
    any other HTTP status                      Reject("http_<status>", body)

No request is made for a message without a sender (``missing_sender``: Vonage requires
``from``), a ``to`` that is not E.164 (``invalid_number``), ``sign_requests`` without a
signature secret (``missing_signature_secret``) or a stored account that no longer validates.
Vonage documents no idempotency key: a send that times out may be sent twice.

**Webhook authentication.** Every webhook URL carries the account's ``?token=`` (configure the
dashboard's receipt and inbound URLs as the account's DLR and inbound URLs); it is always
checked, in constant time. With ``signed_webhooks`` (Vonage enables signed webhooks on request to
support) the ``sig`` parameter must also match: the webhook's parameters except ``sig``, sorted
by name, each as ``&name=value`` with ``&`` and ``=`` in values replaced by ``_``; then either
``md5hash`` = MD5(that string + secret) or ``md5``/``sha1``/``sha256``/``sha512`` = HMAC(secret,
that string), hex, compared case-insensitively (Vonage's HMAC signatures are upper-case). For a
GET webhook the signature is tried without and with our own ``token`` parameter. A request
with no parameters at all (Vonage checking that a URL answers 200) needs only the token. The
``timestamp`` is not checked for freshness (verification is pure, without a clock): a replayed
receipt can only repeat a state the monotonic merge already holds.

**Webhook bodies.** Receipts and inbound messages come as GET (query), POST (form) or POST-JSON,
as the dashboard is set. A receipt carries ``messageId``, ``status`` (``STATUS_MAP``, read
case-insensitively; ``unknown`` is left out on purpose and recorded as ``UnknownStatus``),
``err-code`` (kept as ``error_code`` when not ``0``, with its ``DLR_ERRORS`` text as
``error_detail``), ``msisdn``, ``to`` (our sender), ``network-code``, ``price``, ``scts``,
``api-key``, ``client-ref``, ``message-timestamp``. A multi-part SMS has one receipt per part,
each under its part's ``messageId`` (all of which ``Accepted`` lists). An inbound message carries
``msisdn`` (sender), ``to`` (our number), ``messageId``, ``text``, ``type``, ``keyword``; parts
of a long inbound message (``concat``, ``concat-ref``, ``concat-part``) arrive as separate
webhooks and become separate ``InboundMessage`` events (reassembly needs state, which parsing
has not). Numbers of all digits get a ``+``. No event time is read: ``message-timestamp`` is when
Vonage pushed the webhook, in an unstated zone, and ``scts`` is the carrier's, also without a
zone. A request with no parameters (Vonage checks a URL answers 200 before saving it) is ``[]``.

**Balance.** ``GET /account/get-balance`` answers ``{"value": 10.28, "autoReload": false}``; the
value, in EUR, is read from the JSON text verbatim (never through a float). **Sender names**:
the SMS API lists none (owned numbers are not sender names): ``Unsupported()``.

**Verified** [D] = Vonage's documentation or OpenAPI description in the search corpora, [S] =
official SDK source, [T] = third-party, [U] = assumed:

- [D] ``POST https://rest.nexmo.com/sms/json``, form-encoded; ``api_key``, ``api_secret``,
  ``sig``, ``from``, ``to`` (7-15 digits), ``text``, ``type`` (``unicode``), ``callback``,
  ``client-ref`` (40 characters), the success and error bodies, the status codes 1-12, 14, 15,
  22, 23, 29, 32, 33 and their resolutions (Nexmo/api-specification ``definitions/sms.yml``,
  ``x-errors``; developer.vonage.com troubleshooting and api-errors pages);
- [S] Basic auth on ``/sms/json`` and ``/account/get-balance``, the form body, multi-part
  answers with UUID message ids, throttling and partial-failure bodies (vonage-python-sdk v4
  ``sms/src/vonage_sms``, ``http_client``, ``account`` and their test data); ``entity-id`` and
  ``content-id`` with hyphens (SDK v4 ``requests.py`` and Vonage's DLT blog post, where the
  OpenAPI text says ``entity_id``/``content_id``); the signature algorithm, its methods and the
  ``&``/``=`` replacement (SDK v3 ``client.py``, SDK v4 ``auth.py``, and the SDK's test
  vectors for all five methods, which the tests replay); HMAC signatures in
  upper-case hex (vonage-dotnet-sdk docs);
- [D] receipt fields and status words (``definitions/sms.yml`` ``DeliveryReceipt``), the
  support article on intermediate (accepted, buffered) and final statuses, inbound fields, the
  signed-webhook fields ``timestamp``, ``nonce``, ``sig``, and the balance answer
  (``definitions/account.yml``, value in EUR, 401 ``{"error-code","error-code-label"}``);
- [T] the ``err-code`` texts 0-15 and 99 (several third-party clients reproducing Vonage's
  table), 50-53 (Vonage's DLT blog post); ``callback`` at most 100 characters (SDK v4
  validation; the docs say only "too long", status 23);
- [U] that a GET webhook's signature leaves out parameters already in the configured URL (both
  variants are tried), that Vonage's URL check is an unsigned request without parameters, and
  the wire form of receipts as GET vs POST beyond their field names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.retry import parse_retry_after
from tidings.domain.states import MessageState
from tidings.providers._http import (
    TOKEN_PARAMETER,
    clean_reason,
    json_or_none,
    outcome_from_response,
    outcome_from_transport_error,
    query_failure,
    validation_summary,
    verify_url_token,
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
    Unsupported,
    WebhookAck,
    WebhookEvent,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)

slug: Final = "vonage"
default_base_url: Final = "https://rest.nexmo.com"

SEND_PATH: Final = "/sms/json"
BALANCE_PATH: Final = "/account/get-balance"
CURRENCY: Final = "EUR"
CALLBACK_LIMIT: Final = 100
"""The longest ``callback`` URL sent; a longer one is left out (see the module docstring)."""
CLIENT_REF_LIMIT: Final = 40

SEND_ERRORS: Final[Mapping[str, str]] = {
    "1": "Throttled",
    "2": "Missing Parameters",
    "3": "Invalid Parameters",
    "4": "Invalid Credentials",
    "5": "Internal Error",
    "6": "Invalid Message",
    "7": "Number Barred",
    "8": "Partner Account Barred",
    "9": "Partner Quota Violation",
    "10": "Too Many Existing Binds",
    "11": "Account Not Enabled For HTTP",
    "12": "Message Too Long",
    "14": "Invalid Signature",
    "15": "Invalid Sender Address",
    "22": "Invalid Network Code",
    "23": "Invalid Callback Url",
    "29": "Non-Whitelisted Destination",
    "32": "Signature And API Secret Disallowed",
    "33": "Number De-activated",
}
"""The send ``status`` codes Vonage documents, with their names: the reason when a part comes
back without an ``error-text``."""

RETRY_STATUSES: Final = frozenset({"1", "5", "10"})
"""Send statuses that mean "not now": throttled, internal error, too many binds ("back-off and
retry"). Every other non-zero status is permanent for this account."""

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "accepted": MessageState.SENT,   # intermediate: the carrier took it
    "buffered": MessageState.SENT,   # intermediate: being delivered
    "delivered": MessageState.DELIVERED,
    "expired": MessageState.FAILED,
    "failed": MessageState.FAILED,
    "rejected": MessageState.FAILED,
}
"""Receipt ``status`` words, lower-cased. ``unknown`` ("invalid state, error code not known") is
left out on purpose: it is neither a delivery nor a failure, so it is recorded, not guessed."""

DLR_ERRORS: Final[Mapping[str, str]] = {
    "1": "Unknown",
    "2": "Absent Subscriber - Temporary",
    "3": "Absent Subscriber - Permanent",
    "4": "Call barred by user",
    "5": "Portability Error",
    "6": "Anti-Spam Rejection",
    "7": "Handset Busy",
    "8": "Network Error",
    "9": "Illegal Number",
    "10": "Invalid Message",
    "11": "Unroutable",
    "12": "Destination Un-Reachable",
    "13": "Subscriber Age Restriction",
    "14": "Number Blocked by Carrier",
    "15": "Pre-Paid - Insufficient funds",
    "50": "Entity Filter",
    "51": "Header Filter",
    "52": "Content Filter",
    "53": "Consent Filter",
    "99": "General Error",
}
"""Receipt ``err-code`` texts [T]; an ``err-code`` not listed is kept without a text."""

SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]

webhook_ack: Final = WebhookAck()

_E164: Final = re.compile(r"\+?([0-9]{7,15})")
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_SIGNED_EXTRA: Final = frozenset({"sig"})


class Credentials(BaseModel):
    """The API key and secret from the Vonage dashboard, and optionally the signature secret
    (Dashboard > Settings) for signed requests and signed webhooks."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(pattern=r"^[A-Za-z0-9]{8}$",
                         description="API key: 8 letters and digits")
    api_secret: str = Field(pattern=r"^[!-~]{6,32}$",
                            description="API secret: 6 to 32 visible ASCII characters")
    signature_secret: str | None = Field(
        default=None, pattern=r"^[!-~]{8,128}$",
        description="Signature secret: 8 to 128 visible ASCII characters")


class Config(BaseModel):
    """``signature_method`` is the algorithm chosen in the dashboard (``md5hash`` is Vonage's
    default; ``md5``, ``sha1``, ``sha256``, ``sha512`` are HMACs). ``sign_requests`` signs sends
    with the signature secret instead of sending the API secret; ``signed_webhooks`` refuses
    webhooks without a valid ``sig`` (both need ``signature_secret`` in the credentials)."""

    model_config = ConfigDict(extra="forbid")

    signature_method: SignatureMethod = "md5hash"
    sign_requests: bool = False
    signed_webhooks: bool = False


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message through ``POST /sms/json``; see the module docstring for the form and
    the answer-to-outcome table. ``now`` gives a signed request its ``timestamp`` and reads an
    HTTP-date ``Retry-After``."""
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        return Reject(f"invalid_{which}", validation_summary(exc))
    if not message.sender_id:
        return Reject("missing_sender", "Vonage needs a from (the message's sender_id)")
    recipient = _E164.fullmatch(message.to)
    if recipient is None:
        return Reject("invalid_number", "the recipient must be an E.164 number")
    form = {"from": _sender(message.sender_id), "to": recipient.group(1), "text": message.text}
    if message.encoding == "UCS-2":
        form["type"] = "unicode"
    if 0 < len(message.message_id) <= CLIENT_REF_LIMIT:
        form["client-ref"] = message.message_id
    callback = message.status_callback_url or account.webhook_url_dlr
    if callback and len(callback) <= CALLBACK_LIMIT:
        form["callback"] = callback
    if message.dlt_entity_id:
        form["entity-id"] = message.dlt_entity_id
    if message.dlt_template_id:
        form["content-id"] = message.dlt_template_id
    form["api_key"] = credentials.api_key
    if config.sign_requests:
        if not credentials.signature_secret:
            return Reject("missing_signature_secret",
                          "sign_requests needs a signature_secret in the credentials")
        form["timestamp"] = str(int(now.timestamp()))
        form["sig"] = signature(form, credentials.signature_secret, config.signature_method)
    else:
        form["api_secret"] = credentials.api_secret
    url = account.base_url.rstrip("/") + SEND_PATH
    try:
        response = await http.post(url, data=form, headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    return outcome_from_response(response, now=now, accepted=lambda r: _answer(r, now),
                                 secrets=secrets)


def _answer(response: httpx.Response, now: datetime) -> SendOutcome:
    """A 2xx answer: one entry per part, each with its own status (module docstring)."""
    body = json_or_none(response)
    parts = body.get("messages") if isinstance(body, dict) else None
    if (not isinstance(body, dict) or not isinstance(parts, list) or not parts
            or not all(isinstance(part, dict) for part in parts)):
        return Reject("malformed_response",
                      f"HTTP {response.status_code} without a messages list: {response.text}")
    if any(_status(part) == "0" for part in parts):
        ids = tuple(part["message-id"] for part in parts
                    if _status(part) == "0" and isinstance(part.get("message-id"), str)
                    and part["message-id"])
        return Accepted(ids, raw=body)
    failures = [(_status(part) or "error", _error_text(part)) for part in parts]
    permanent = [failure for failure in failures if failure[0] not in RETRY_STATUSES]
    if permanent:
        return Reject(*permanent[0])
    code, text = failures[0]
    return Retry(code, text, parse_retry_after(response.headers.get("retry-after"), now))


def _status(part: Mapping[str, Any]) -> str | None:
    value = part.get("status")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value).strip() or None


def _error_text(part: Mapping[str, Any]) -> str:
    text = part.get("error-text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    return SEND_ERRORS.get(_status(part) or "", "no error-text given")


def _sender(sender_id: str) -> str:
    """A number as Vonage wants it (digits, no ``+``); an alphanumeric sender as it is."""
    number = _E164.fullmatch(sender_id)
    return number.group(1) if number is not None else sender_id


# --- signatures ----------------------------------------------------------------------------------


def signature(params: Mapping[str, str], secret: str, method: SignatureMethod) -> str:
    """Vonage's signature of ``params`` (without any ``sig`` among them), lower-case hex.

    The string signed is every parameter sorted by name as ``&name=value``, with ``&`` and ``=``
    in values replaced by ``_``. ``md5hash`` hashes that string followed by the secret; the
    other methods are an HMAC of the string keyed with the secret.
    """
    signed = "".join(f"&{name}={params[name].replace('&', '_').replace('=', '_')}"
                     for name in sorted(params) if name not in _SIGNED_EXTRA)
    if method == "md5hash":
        return hashlib.md5((signed + secret).encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), signed.encode("utf-8"), method).hexdigest()


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Check the URL's ``token`` against the account's webhook token, then, with
    ``signed_webhooks``, the ``sig`` parameter with the account's signature secret.

    Raises ``WebhookVerificationError`` when the token is missing or differs, and with
    ``signed_webhooks`` when the account has no signature secret, the body cannot be read, or
    ``sig`` is missing or does not match. A request without any parameter (Vonage checking that
    the URL answers) needs only the token: it carries nothing to record.
    """
    verify_url_token(request, account)
    try:
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        raise WebhookVerificationError("the account's config does not validate") from exc
    if not config.signed_webhooks:
        return
    secret = account.credentials.get("signature_secret", "")
    if not secret:
        raise WebhookVerificationError("the account has no signature_secret to check sig with")
    try:
        fields = _fields(request)
    except WebhookPayloadError as exc:
        raise WebhookVerificationError("the body cannot be read to check its sig") from exc
    if not fields:
        return  # Vonage's unsigned check that the URL answers 200; it carries nothing to record
    given = fields.pop("sig", "").strip().lower()
    if not given:
        raise WebhookVerificationError("sig is missing")
    variants = [fields]
    token = request.query.get(TOKEN_PARAMETER)
    if not request.body and token is not None:
        variants.append({**fields, TOKEN_PARAMETER: token})
    for params in variants:
        expected = signature(params, secret, config.signature_method)
        if hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8")):
            return
    raise WebhookVerificationError("sig does not match")


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """One event per webhook: a receipt (it has ``status``) becomes a ``StatusUpdate`` or an
    ``UnknownStatus``, an inbound message (``text``, ``type`` or ``keyword``, no ``status``) an
    ``InboundMessage``; a request without parameters is ``[]``.

    Raises ``WebhookPayloadError`` for a body that is neither form nor a JSON object, a receipt
    without ``messageId``, an inbound message without ``messageId``, ``msisdn`` or ``to``, and
    parameters that are neither.
    """
    fields = _fields(request)
    if not fields:
        return []
    message_id = fields.get("messageId", "").strip()
    if "status" in fields:
        if not message_id:
            raise WebhookPayloadError("a delivery receipt needs messageId")
        word = fields["status"].strip()
        state = STATUS_MAP.get(word.lower())
        if state is None:
            return [UnknownStatus(provider_message_id=message_id, provider_status=word)]
        err = fields.get("err-code", "").strip()
        error_code = err if err and err != "0" else None
        return [StatusUpdate(
            provider_message_id=message_id, state=state, provider_status=word,
            error_code=error_code,
            error_detail=DLR_ERRORS.get(error_code) if error_code else None,
        )]
    if {"text", "type", "keyword"} & fields.keys():
        sender, recipient = fields.get("msisdn", "").strip(), fields.get("to", "").strip()
        if not message_id or not sender or not recipient:
            raise WebhookPayloadError("an inbound message needs messageId, msisdn and to")
        return [InboundMessage(provider_message_id=message_id, from_number=_plus(sender),
                               to_number=_plus(recipient), text=fields.get("text", ""))]
    raise WebhookPayloadError("neither a delivery receipt (status) nor an inbound message (text)")


def _fields(request: WebhookRequest) -> dict[str, str]:
    """The webhook's parameters: the body's (JSON object or form) when it has one, else the
    query's without our ``token``. Repeated names keep their first value; JSON values that are
    not strings are kept as their JSON text, nulls dropped."""
    if not request.body.strip():
        return {name: value for name, value in request.query.items() if name != TOKEN_PARAMETER}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadError("the body is not UTF-8") from exc
    if "json" in request.headers.get("content-type", "") or text.lstrip().startswith("{"):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise WebhookPayloadError("the JSON body cannot be parsed") from exc
        if not isinstance(body, dict):
            raise WebhookPayloadError("the JSON body is not an object")
        return {str(name): value if isinstance(value, str) else json.dumps(value)
                for name, value in body.items() if value is not None}
    fields: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def _plus(number: str) -> str:
    return f"+{number}" if number.isdigit() else number


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """``GET /account/get-balance`` with Basic auth: the ``value`` verbatim, in EUR.

    Raises ``ProviderError`` for invalid stored credentials, a transport error, an error status
    (401 for bad credentials) or an answer without a numeric ``value``.
    """
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
    except pydantic.ValidationError as exc:
        raise ProviderError(Reject("invalid_credentials", validation_summary(exc))) from None
    url = account.base_url.rstrip("/") + BALANCE_PATH
    try:
        response = await http.get(url, auth=httpx.BasicAuth(credentials.api_key,
                                                            credentials.api_secret),
                                  headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    try:
        body = json.loads(response.text, parse_float=str, parse_int=str)
    except ValueError:
        body = None
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str) or not _NUMBER.fullmatch(value.strip()):
        raise ProviderError(Reject("malformed_response", clean_reason(
            f"get-balance answered no numeric value: {response.text}", secrets)))
    return Balance(amount=value.strip(), currency=CURRENCY)


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """The SMS API has no sender-name listing: always ``Unsupported()``."""
    return Unsupported()


# --- helpers -------------------------------------------------------------------------------------
