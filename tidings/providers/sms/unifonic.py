"""Unifonic (Saudi Arabia), the SMS REST API on Unifonic Cloud ("NextGen", OpenAPI version 1.0).

Docs: https://docs.unifonic.com/reference/sms-api and
https://docs.unifonic.com/docs/sending-your-first-sms-via-unifonic-api (send),
https://docs.unifonic.com/docs/understanding-reasons-of-sms-non-delivery (``ER-xx`` codes),
https://docs.unifonic.com/docs/receiving-delivery-status-via-webhook (delivery reports), and the
official OpenAPI document behind docs.unifonic.com's Redoc page
(``resources/AutoDocsSrc/api-documentation/SMS API 11.json``, as harvested in
api-evangelist/unifonic ``openapi/_original/unifonic-sms-openapi-original.json``).

**Auth.** The application's ``AppSid`` (created per SMS application in the Unifonic console),
sent as a form field of every request. No other credential: the OpenAPI document also declares
HTTP basic as a global scheme, but none of Unifonic's request examples sends it.

**Send.** ``POST /rest/SMS/messages``, ``application/x-www-form-urlencoded``::

    AppSid=...&SenderID=ACME&Recipient=966505980169&Body=...&responseType=JSON
      &CorrelationID=<idempotency key>[&MessageType=6][&statusCallback=https://...]

``Recipient`` is the number in international form without ``+`` or ``00``. ``SenderID`` is the
message's sender, else the config's ``sender_id``, else left out (Unifonic then uses the app's
default sender). ``CorrelationID`` is ``OutboundSms.idempotency_key`` (Unifonic's "unique
identifier attached to requests and messages"). ``MessageType`` is the KSA traffic class from
the config (1 warning, 3 services, 5 promotional, 6 awareness), sent only when configured.
``statusCallback`` is the message's ``status_callback_url`` (the account's DLR URL with its
token), sent only when it is HTTPS (Unifonic refuses anything else) and ``per_message_callback``
is on. The text goes as it is; Unifonic encodes and splits it (no encoding field exists).

Answers are the envelope ``{"success", "message", "errorCode", "data"}``; ``success`` comes as a
JSON boolean or as the string ``"true"``/``"false"`` (both appear in Unifonic's examples)::

    answer                                       outcome
    2xx success true, data.MessageID             Accepted((str(MessageID),), raw=body)
    2xx success true without a MessageID         Accepted((), raw=body): it was taken
    success false, errorCode "ER-04" (2xx or a   Reject("ER-04", message), e.g. "Dest num is
      4xx but 408/429)                           too short"; no errorCode: "http_<status>" (4xx)
                                                 or "error" (2xx)
    2xx that is no envelope                      Reject("malformed_response"): it may have been
                                                 taken, so it is not retried on this account
    Unifonic's own 4xx statuses (401 auth, 402   Reject("http_<status>", body) when the body is
      AppSid missing, 410, 480 sender, 482 ...)  no envelope
    408, 429 (Retry-After honoured), 5xx (599    Retry (tidings.providers._http)
      "Request failed"), timeout, connection

No request is made for a ``to`` that is not E.164 (``Reject("invalid_number")``) or for an
account that no longer validates (``Reject("invalid_credentials" | "invalid_config")``).

**Webhook authentication.** Unifonic signs nothing. The DLR URL (per message in
``statusCallback``, or configured in the console under Developer > Webhooks) is the account's
DLR URL with ``?token=<webhook token>``; ``verify_webhook`` compares that parameter with the
account's token in constant time.

**Delivery reports.** One report per request: a JSON object (or an array of them), a form
body, or the query string of a body-less request (the ``token`` parameter aside). Field names
are read case-insensitively: ``MessageID`` (the send's id), the status word in ``DLR`` (else
``Status``), ``Recipient``, ``SCTS`` (when the network reported, ``yyyy-mm-dd hh:mm:ss`` in the
account's time zone, read with ``report_utc_offset_minutes``, default +03:00; an ISO time with
a zone is taken as it is), and for a failure ``ErrorCode`` (an ``ER-xx``) and a description in
``Comments``, ``ErrorMessage``, ``Description`` or ``Message``. ``STATUS_MAP`` maps the word,
case-insensitively; any other word is ``UnknownStatus``. Unifonic expects a 200 and retries a
report six times within 72 hours otherwise. No inbound-SMS webhook is documented for this API.

**Balance and sender names.** The current API documents neither (the OpenAPI document has only
send, scheduled messages, message details and the legacy wrapper): both ``Unsupported()``. The
send answer's ``data.Balance`` is kept in ``Accepted.raw``.

**Verified** [D] = Unifonic's documentation in the search corpora, [T] = third-party code or
docs, [U] = assumed:

- [D] the URL ``https://el.cloud.unifonic.com/rest/SMS/messages``, POST, form-encoded
  ``AppSid``, ``SenderID`` (optional, app default), ``Recipient`` (international, no ``+``/
  ``00``), ``Body``, ``responseType=JSON``, ``CorrelationID``, ``baseEncode``, ``async``,
  ``MessageType`` (1/3/5/6, KSA only) (docs.unifonic.com send guide and API reference);
- [D] the success body ``{"success": true, "message": "", "errorCode": "ER-00", "data":
  {"MessageID": 42000348806924, "CorrelationID", "Status": "Sent", "NumberOfUnits", "Cost",
  "Balance", "Recipient", "TimeCreated", "CurrencyCode"}}`` and the failure body
  ``{"success": false, "message": "Dest num is too short", "errorCode": "ER-04", "data": {}}``
  (API reference); ``"success": "true"`` as a string (OpenAPI examples); [T] the same
  parsing in Novu's and other open-source Unifonic clients;
- [D] the ``ER-01`` ... ``ER-10`` non-delivery codes (non-delivery page) and the HTTP status
  table (401 authentication failed, 402 missing AppSid, 403 invalid IP, 406 wrong parameter
  format, 409 duplicate, 410 invalid recipient format, 429 too many requests, 449 empty body,
  480 sender not allowed, 482 invalid destination, 599 request failed), via the OpenAPI
  document and api-evangelist/unifonic ``errors/unifonic-problem-types.yml``; [U] whether an
  error status comes with the envelope (both are handled) and which HTTP status an ``ER-xx``
  failure comes with (the reference shows only the body);
- [D] ``statusCallback``: the OpenAPI document says it is the HTTPS URL that receives the
  message's delivery status; the send guide's table instead calls it a status filter ("Sent",
  "Queued", "Rejected", "Failed"). The URL reading is used; ``per_message_callback: false``
  leaves it out for accounts where Unifonic disagrees [U];
- [D] delivery reports are HTTPS POSTs to the configured URL, one per DLR, no signature
  (current webhook page; its payload sample was not retrievable); [D] the fields ``MessageID``,
  ``DLR`` ("Delivered" or "Undeliverable"), ``Recipient``, ``TimeCreated``, ``SCTS``,
  ``DLRTimestamp`` in the account's time zone and the 200/six-retries rule come from Unifonic's
  older support article (support.unifonic.com, "Can I receive DLR receipt update through a
  webhook?"); [U] that the current platform posts the same names, the body's content type,
  ``Status``/``ErrorCode``/``Comments`` as alternatives, and the words ``Sent``, ``Queued``,
  ``Rejected``, ``Failed``, ``Undelivered`` (Unifonic's state names) and ``Expired`` in reports;
- [D] no balance or sender-id listing endpoint in the current API reference or OpenAPI
  document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.states import MessageState
from tidings.providers._http import (
    clean_reason,
    json_or_none,
    outcome_from_response,
    outcome_from_transport_error,
    validation_summary,
    verify_url_token,
    webhook_reports,
)
from tidings.providers.base import (
    Accepted,
    AccountContext,
    OutboundSms,
    Reject,
    SendOutcome,
    StatusUpdate,
    UnknownStatus,
    Unsupported,
    WebhookAck,
    WebhookEvent,
    WebhookPayloadError,
    WebhookRequest,
)

slug: Final = "unifonic"
default_base_url: Final = "https://el.cloud.unifonic.com"

SEND_PATH: Final = "/rest/SMS/messages"
KSA_OFFSET_MINUTES: Final = 180
"""Saudi Arabia's UTC offset (+03:00, no daylight saving): the default report time zone."""

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "queued": MessageState.SENT,
    "sent": MessageState.SENT,
    "delivered": MessageState.DELIVERED,
    "undeliverable": MessageState.FAILED,
    "undelivered": MessageState.FAILED,
    "failed": MessageState.FAILED,
    "rejected": MessageState.FAILED,
    "expired": MessageState.FAILED,
}
"""Report status words, lower-cased; any other word is ``UnknownStatus``."""

webhook_ack: Final = WebhookAck()

_E164: Final = re.compile(r"\+([1-9][0-9]{6,14})")
_DETAIL_FIELDS: Final = ("comments", "errormessage", "description", "message")


class Credentials(BaseModel):
    """The ``AppSid`` of a Unifonic SMS application, as the console shows it."""

    model_config = ConfigDict(extra="forbid")

    app_sid: str = Field(pattern=r"^[A-Za-z0-9_-]{10,100}$",
                         description="Unifonic AppSid: 10 to 100 letters, digits, '-' or '_'")


class Config(BaseModel):
    """``sender_id``: the sender when a message names none (else the app's default).
    ``message_type``: the KSA classification sent as ``MessageType`` (1 warning, government
    only; 3 services; 5 promotional, ``-AD`` senders only; 6 awareness), none by default.
    ``per_message_callback``: give each send its DLR URL in ``statusCallback`` (HTTPS URLs
    only). ``report_utc_offset_minutes``: the account's time zone, for report times without
    one (default +03:00)."""

    model_config = ConfigDict(extra="forbid")

    sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._&-]{0,15}$")
    message_type: Literal[1, 3, 5, 6] | None = None
    per_message_callback: bool = True
    report_utc_offset_minutes: int = Field(default=KSA_OFFSET_MINUTES, ge=-720, le=840)


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message through ``/rest/SMS/messages``; see the module docstring for the form
    and the answer-to-outcome table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")`` when the
    stored account no longer validates, ``Reject("invalid_number")`` for a ``to`` that is not
    E.164.
    """
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        return Reject(f"invalid_{which}", validation_summary(exc))
    number = _E164.fullmatch(message.to)
    if number is None:
        return Reject("invalid_number", "the recipient must be an E.164 number")
    form = {"AppSid": credentials.app_sid}
    sender = message.sender_id or config.sender_id
    if sender:
        form["SenderID"] = sender
    form.update({"Recipient": number.group(1), "Body": message.text, "responseType": "JSON"})
    if message.idempotency_key:
        form["CorrelationID"] = message.idempotency_key
    if config.message_type is not None:
        form["MessageType"] = str(config.message_type)
    callback = message.status_callback_url
    if config.per_message_callback and callback and callback.lower().startswith("https://"):
        form["statusCallback"] = callback
    url = account.base_url.rstrip("/") + SEND_PATH
    try:
        response = await http.post(url, data=form, headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if response.is_client_error and response.status_code not in (408, 429):
        error = _envelope_error(response)
        if error is not None:
            code, text = error
            return Reject(code or f"http_{response.status_code}", clean_reason(text, secrets))
    return outcome_from_response(response, now=now, accepted=_accepted, secrets=secrets)


def _accepted(response: httpx.Response) -> SendOutcome:
    body = json_or_none(response)
    if isinstance(body, dict) and _flag(body.get("success")) is True:
        data = body.get("data")
        message_id = data.get("MessageID") if isinstance(data, dict) else None
        if _is_id(message_id):
            return Accepted((str(message_id),), raw=body)
        return Accepted((), raw=body)
    error = _envelope_error(response)
    if error is not None:
        code, text = error
        return Reject(code or "error", text)
    return Reject("malformed_response",
                  f"HTTP {response.status_code} without a message id: {response.text}")


def _envelope_error(response: httpx.Response) -> tuple[str | None, str] | None:
    """``(errorCode, message)`` of a ``{"success": false, ...}`` envelope (``errorCode``
    ``None`` when absent or empty; ``message`` the body itself when empty), else ``None``."""
    body = json_or_none(response)
    if not isinstance(body, dict) or _flag(body.get("success")) is not False:
        return None
    code = body.get("errorCode")
    text = body.get("message")
    if not isinstance(text, str) or not text.strip():
        text = response.text.strip()
    return (code.strip() if isinstance(code, str) and code.strip() else None), text.strip()


def _flag(value: object) -> bool | None:
    """Unifonic's ``success``: a JSON boolean or the strings ``"true"``/``"false"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _is_id(value: object) -> bool:
    return (isinstance(value, int | str) and not isinstance(value, bool)
            and str(value).strip() != "")


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """One event per report in body order (see the module docstring for the accepted bodies
    and field names).

    Raises ``WebhookPayloadError`` for a body that cannot be read or carries no report, or a
    report without ``MessageID`` or a status word.
    """
    offset = account.config.get("report_utc_offset_minutes", KSA_OFFSET_MINUTES)
    if isinstance(offset, bool) or not isinstance(offset, int) or not -720 <= offset <= 840:
        offset = KSA_OFFSET_MINUTES
    zone = timezone(timedelta(minutes=offset))
    return [_event({str(name).lower(): value for name, value in report.items()}, zone)
            for report in webhook_reports(request)]


def _event(report: Mapping[str, Any], zone: timezone) -> WebhookEvent:
    message_id = report.get("messageid")
    if not _is_id(message_id):
        raise WebhookPayloadError("MessageID is missing")
    provider_id = str(message_id).strip()
    word = _text(report.get("dlr")) or _text(report.get("status"))
    if not word:
        raise WebhookPayloadError("the report has no DLR or Status")
    state = STATUS_MAP.get(word.lower())
    if state is None:
        return UnknownStatus(provider_message_id=provider_id, provider_status=word)
    error_code = error_detail = None
    if state is MessageState.FAILED:
        error_code = _text(report.get("errorcode")) or None
        error_detail = next((_text(report.get(name)) for name in _DETAIL_FIELDS
                             if _text(report.get(name))), None)
    return StatusUpdate(provider_message_id=provider_id, state=state, provider_status=word,
                        error_code=error_code, error_detail=error_detail,
                        occurred_at=_time(report.get("scts"), zone))


def _text(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _time(value: object, zone: timezone) -> datetime | None:
    """``yyyy-mm-dd hh:mm:ss[.fff]`` in ``zone``, or an ISO 8601 time with its own zone;
    ``None`` when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=zone)


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """Unifonic's current API documents no balance query: always ``Unsupported()``."""
    return Unsupported()


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """Unifonic's current API documents no sender-id listing: always ``Unsupported()``."""
    return Unsupported()


# --- helpers -------------------------------------------------------------------------------------
