"""MSG91 (India), SendSMS "Flow"/OneAPI, API v5.

Docs: https://control.msg91.com/apidoc/textsms/send-sms-flow.php (send),
https://msg91.com/help/how-can-i-get-the-delivery-reports-on-my-webhook-url (delivery reports),
https://api.msg91.com/apidoc/basic/route-balance.php (balance).

**Auth.** The account's auth key in the ``authkey`` request header (a query parameter for the
legacy balance call). No other credential.

**Send.** ``POST /api/v5/flow/`` with JSON::

    {"template_id": "<MSG91 template id>", "short_url": "0", "sender": "ACMEIN",
     "recipients": [{"mobiles": "919876543210", "VAR1": "482913", "VAR2": "..."}]}

MSG91 sends a stored template (a "flow"): the text is not sent, only the values of its
variables, taken from ``OutboundSms.template_variables`` in order and named ``VAR1``,
``VAR2``, ... unless the config names them per template (``variable_names``; MSG91 variable
names are case-sensitive and chosen when the template is created). The MSG91 template id is the
message's DLT template id, or what ``template_ids`` maps it to when the two differ. ``route``
and ``unicode`` (``1`` for a UCS-2 text) are added when they apply. Success is
``{"type": "success", "message": "<request id>"}``; the request id is the only id MSG91 gives
and the one its delivery reports carry::

    answer                                   outcome
    2xx {"type":"success","message":id}      Accepted((id,), raw=body)
    {"type":"error","message":m} (any 4xx    Reject(MSG91's "code" when given, else
      but 408/429, or a 2xx)                 "http_<status>" or "error", m)
    2xx that is neither                      Reject("malformed_response"): MSG91 may have taken
                                             it, so it is not retried through this account
    408, 429, 5xx, timeout, connection error  Retry (tidings.providers._http)

No request is made for a message without ``dlt_template_id`` (``Reject("dlt_template_required")``)
or whose variables do not fit the named ones (``Reject("template_variables_mismatch")``).

**DLT.** The flow API carries the DLT ids on the stored template only: an MSG91 template is
created with its DLT template id, and the sender header is mapped to the DLT entity (PE) id in
the MSG91 panel. MSG91's own B2B note says ``PE_ID`` can be passed in "all APIs apart from
OneAPI" and that OneAPI users add the template id on the panel; so no ``DLT_TE_ID``/``PE_ID`` is
sent here, and DLT compliance rests on the template mapping: every Indian send names (through
``template_ids``) the MSG91 template registered with its DLT template id.

**Webhook authentication.** MSG91 signs nothing. The delivery-report URL configured in the MSG91
panel is the account's DLR URL with ``?token=<webhook token>``; ``verify_webhook`` compares the
``token`` query parameter with the account's webhook token in constant time.

**Delivery reports** (chosen per account in the panel, "Webhook" version):

- v2, ``application/x-www-form-urlencoded``, one field ``data`` holding a JSON array:
  ``[{"senderId", "requestId", "report": [{"date", "number", "status", "desc", "amount",
  "clientid", "INMSID", "CRQID", "ctCode", "credit", "failedReason"}], "userId",
  "campaignName"}]``; one ``StatusUpdate`` per report entry;
- v3, JSON, one flat object ``{"date", "number", "senderId", "requestId", "status", "desc",
  ...}``;
- v4 (the CleverTap format) carries no request id, so nothing can be matched: answered ``[]``.

``status`` is MSG91's numeric code (``STATUS_MAP``), kept as ``provider_status``; ``desc``
(plus ``failedReason`` when given) becomes ``error_detail`` of a failure. ``date`` is
``YYYY-MM-DD HH:MM:SS``, read as India time (+05:30). MSG91 documents no inbound-SMS webhook
shape for its long codes: a form or JSON body without a request id but with ``message`` or
``keyword`` (the inbound look of Jina's adapter) is answered ``[]``, not an error.

**Balance.** ``GET /api/balance.php?authkey=...&type=<route>`` answers the route's SMS credits
as plain text (``Balance(credits, None)``), or an error text. The auth key is in the URL, so
every reason is redacted and transport reasons lose their URL. **Sender names**: MSG91 documents
no listing API; ``Unsupported()``.

**Verified** [D] = MSG91's documentation in the search corpora, [T] = third-party code or docs,
[U] = assumed:

- [D] the flow URL ``https://control.msg91.com/api/v5/flow/`` (trailing slash as documented),
  the ``authkey`` header, ``recipients[].mobiles`` in international format without ``+``,
  ``VAR1``-style variables named as in the template, ``sender``, ``route``, ``unicode``, and
  the success body ``{"message": "5762846b4f8d285d378b4567", "type": "success"}`` (MSG91's
  "Send SMS via FLOW" page, control.msg91.com and api.msg91.com copies);
- [T] ``template_id`` (the newer name of ``flow_id``) and ``short_url`` ``"1"``/``"0"``
  (utopia-php/messaging issue #23 quoting MSG91's current docs; n8n and npm wrappers);
- [D] OneAPI carries DLT ids only on the panel (msg91.com/help/dlt-key-points-for-b2b-platforms
  and "Map SMS Content Template on MSG91 API/Panel");
- [D] the v2/v3/v4 webhook bodies, v2 being form-encoded, and the codes 1 delivered, 2 failed,
  9 NDNC, 16 and 25 rejected, 17 blocked (msg91.com/help webhook page); no signature is
  documented;
- [D] ``balance.php?authkey=&type=`` answering text (api.msg91.com apidoc "Check Route
  Balance"); [T] served on control.msg91.com too;
- [T] the error body ``{"message": "Authentication failure", "type": "error"}`` (recorded in
  the comments of third-party PHP clients); [U] the HTTP status it comes with (200 and 4xx
  are both handled) and an optional ``code`` (no official error sample was found);
- [U] code ``8`` as "submitted/sent" (MSG91's help lists a Submitted and a Sent/Pending status
  but no numbers for them), and the +05:30 zone of ``date``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import parse_qs

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidings.domain.states import MessageState
from tidings.providers._http import (
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
    OutboundSms,
    ProviderError,
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

slug: Final = "msg91"
default_base_url: Final = "https://control.msg91.com"

FLOW_PATH: Final = "/api/v5/flow/"
BALANCE_PATH: Final = "/api/balance.php"
"""The query parameter of the webhook URL that carries the account's webhook token."""
DEFAULT_BALANCE_ROUTE: Final = "4"
"""The route whose balance is asked for when the config names none (4: transactional)."""
IST: Final = timezone(timedelta(hours=5, minutes=30))

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "1": MessageState.DELIVERED,
    "2": MessageState.FAILED,
    "8": MessageState.SENT,     # submitted to the operator [U]
    "9": MessageState.FAILED,   # NDNC: a DND number on the promotional route
    "16": MessageState.FAILED,  # rejected
    "17": MessageState.FAILED,  # blocked (blacklisted) number
    "25": MessageState.FAILED,  # rejected
}
"""MSG91's delivery-report ``status`` codes; any other code is ``UnknownStatus``."""

webhook_ack: Final = WebhookAck()

_RESERVED_NAMES: Final = frozenset({"mobiles"})
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class Credentials(BaseModel):
    """The MSG91 auth key, as the panel's "Authkey" page shows it."""

    model_config = ConfigDict(extra="forbid")

    auth_key: str = Field(pattern=r"^[A-Za-z0-9]{16,100}$",
                          description="MSG91 auth key: 16 to 100 letters and digits")


class Config(BaseModel):
    """How this account's sends name MSG91 templates.

    ``template_ids`` maps a DLT template id to the MSG91 template id registered with it, for
    templates whose MSG91 id is not the DLT id itself. ``variable_names`` maps a DLT template id
    to the names of its MSG91 variables in order (default ``VAR1``, ``VAR2``, ...).
    ``short_url`` asks MSG91 to shorten URLs in the variables; ``route`` is MSG91's route
    (``"4"`` transactional, ``"1"`` promotional), also used for the balance query.
    """

    model_config = ConfigDict(extra="forbid")

    template_ids: dict[str, str] = Field(default_factory=dict)
    variable_names: dict[str, list[str]] = Field(default_factory=dict)
    short_url: bool = False
    route: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,10}$")

    @field_validator("template_ids")
    @classmethod
    def _template_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for dlt_id, msg91_id in value.items():
            _check_dlt_template_id(dlt_id)
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", msg91_id):
                raise ValueError(f"MSG91 template id for {dlt_id!r} must be 1 to 64 letters, "
                                 "digits, '-' or '_'")
        return value

    @field_validator("variable_names")
    @classmethod
    def _variable_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for dlt_id, names in value.items():
            _check_dlt_template_id(dlt_id)
            if len(set(names)) != len(names):
                raise ValueError(f"variable names for {dlt_id!r} repeat")
            for name in names:
                if not re.fullmatch(r"[A-Za-z0-9_]{1,50}", name) or name in _RESERVED_NAMES:
                    raise ValueError(f"{name!r} is not a usable MSG91 variable name")
        return value


credentials_model = Credentials
config_model = Config


def _check_dlt_template_id(value: str) -> None:
    if not re.fullmatch(r"[0-9]{1,30}", value):
        raise ValueError(f"{value!r} is not a DLT template id (digits only)")


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send the message's DLT template through MSG91's flow API, one recipient per request;
    see the module docstring for the answer-to-outcome table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")`` when the
    stored account no longer validates, ``Reject("dlt_template_required")``,
    ``Reject("invalid_number")`` for a ``to`` that is not ``+`` and digits, and
    ``Reject("template_variables_mismatch")``.
    """
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        return Reject(f"invalid_{which}", validation_summary(exc))
    dlt_id = message.dlt_template_id
    if not dlt_id:
        return Reject("dlt_template_required",
                      "MSG91 sends stored templates: the message needs a dlt_template_id")
    if not re.fullmatch(r"\+[0-9]{6,15}", message.to):
        return Reject("invalid_number", "the recipient must be an E.164 number")
    names = config.variable_names.get(dlt_id)
    variables = message.template_variables
    if names is None:
        names = [f"VAR{index}" for index in range(1, len(variables) + 1)]
    elif len(names) != len(variables):
        return Reject("template_variables_mismatch",
                      f"template {dlt_id} has {len(names)} MSG91 variables, "
                      f"the message fills {len(variables)}")
    recipient = {"mobiles": message.to[1:], **dict(zip(names, variables, strict=True))}
    body: dict[str, Any] = {
        "template_id": config.template_ids.get(dlt_id, dlt_id),
        "short_url": "1" if config.short_url else "0",
        "recipients": [recipient],
    }
    if message.sender_id:
        body["sender"] = message.sender_id
    if config.route:
        body["route"] = config.route
    if message.encoding == "UCS-2":
        body["unicode"] = 1
    url = account.base_url.rstrip("/") + FLOW_PATH
    headers = {"authkey": credentials.auth_key, "accept": "application/json"}
    try:
        response = await http.post(url, json=body, headers=headers)
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if response.is_client_error and response.status_code not in (408, 429):
        error = _msg91_error(response)
        if error is not None:
            code, text = error
            return Reject(code or f"http_{response.status_code}", clean_reason(text, secrets))
    return outcome_from_response(response, now=now, accepted=_accepted, secrets=secrets)


def _accepted(response: httpx.Response) -> SendOutcome:
    body = json_or_none(response)
    if isinstance(body, dict) and body.get("type") == "success":
        request_id = body.get("message")
        if isinstance(request_id, str) and request_id:
            return Accepted((request_id,), raw=body)
    error = _msg91_error(response)
    if error is not None:
        code, text = error
        return Reject(code or "error", text)
    return Reject("malformed_response",
                  f"HTTP {response.status_code} without a request id: {response.text}")


def _msg91_error(response: httpx.Response) -> tuple[str | None, str] | None:
    """``(code, message)`` of a ``{"type": "error", ...}`` body (``code`` ``None`` when MSG91
    gives none); ``None`` for any other body."""
    body = json_or_none(response)
    if not isinstance(body, dict) or body.get("type") != "error":
        return None
    code = body.get("code")
    text = body.get("message")
    return (
        str(code) if isinstance(code, int | str) and not isinstance(code, bool) and code != ""
        else None,
        text if isinstance(text, str) else json.dumps(text),
    )


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """The delivery reports of a v2 (form ``data``) or v3 (flat JSON) webhook, one event per
    report entry in body order; ``[]`` for a v4 body or an inbound-looking one (see the module
    docstring).

    Raises ``WebhookPayloadError`` for a body that is none of these, or a report without
    ``requestId`` or ``status``.
    """
    body = _webhook_body(request)
    if isinstance(body, list):
        if all(isinstance(item, dict) and "event" in item for item in body):
            return []  # v4: no request id to match
        return _v2_events(body)
    if isinstance(body.get("data"), str):
        try:
            items = json.loads(body["data"])
        except ValueError as exc:
            raise WebhookPayloadError("the data field is not JSON") from exc
        if not isinstance(items, list):
            raise WebhookPayloadError("the data field is not a JSON array")
        return _v2_events(items)
    if "requestId" in body:
        return [_event(body.get("requestId"), body)]
    if "message" in body or "keyword" in body:
        return []  # an inbound (long code) forward: no documented shape to read
    raise WebhookPayloadError("neither a v2 data field nor a v3 report")


def _webhook_body(request: WebhookRequest) -> dict[str, Any] | list[Any]:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadError("the body is not UTF-8") from exc
    stripped = text.lstrip()
    if "json" in request.headers.get("content-type", "") or stripped.startswith(("{", "[")):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise WebhookPayloadError("the JSON body cannot be parsed") from exc
        if not isinstance(body, dict | list):
            raise WebhookPayloadError("the JSON body is neither an object nor an array")
        return body
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _v2_events(items: list[Any]) -> list[WebhookEvent]:
    events: list[WebhookEvent] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("report"), list):
            raise WebhookPayloadError("a v2 item needs a report list")
        for report in item["report"]:
            if not isinstance(report, dict):
                raise WebhookPayloadError("a v2 report entry is not an object")
            events.append(_event(item.get("requestId"), report))
    return events


def _event(request_id: object, report: Mapping[str, Any]) -> WebhookEvent:
    if not isinstance(request_id, str) or not request_id:
        raise WebhookPayloadError("requestId is missing")
    status = report.get("status")
    if isinstance(status, bool) or not isinstance(status, int | str) or status == "":
        raise WebhookPayloadError("status is missing")
    code = str(status).strip()
    state = STATUS_MAP.get(code)
    if state is None:
        return UnknownStatus(provider_message_id=request_id, provider_status=code)
    detail = None
    if state is MessageState.FAILED:
        parts = [_text(report.get("desc")), _text(report.get("failedReason"))]
        detail = ": ".join(dict.fromkeys(part for part in parts if part)) or None
    return StatusUpdate(provider_message_id=request_id, state=state, provider_status=code,
                        error_detail=detail, occurred_at=_ist_date(report.get("date")))


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _ist_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    except ValueError:
        return None


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """The SMS credits of the config's route (``DEFAULT_BALANCE_ROUTE`` without one), verbatim,
    with no currency. Raises ``ProviderError`` for an invalid stored account, a transport
    error, an error status, or an answer that is not a number (``Reject("error")`` with MSG91's
    error text, redacted)."""
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        raise ProviderError(Reject(f"invalid_{which}", validation_summary(exc))) from None
    params = {"authkey": credentials.auth_key, "type": config.route or DEFAULT_BALANCE_ROUTE}
    try:
        response = await http.get(account.base_url.rstrip("/") + BALANCE_PATH, params=params)
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    text = response.text.strip()
    if _NUMBER.fullmatch(text):
        return Balance(amount=text, currency=None)
    error = _msg91_error(response)
    if error is not None:
        raise ProviderError(Reject(error[0] or "error", clean_reason(error[1], secrets)))
    raise ProviderError(Reject("error", clean_reason(text or "balance.php answered nothing",
                                                     secrets)))


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """MSG91 documents no sender-id listing: always ``Unsupported()``."""
    return Unsupported()


# --- helpers -------------------------------------------------------------------------------------
