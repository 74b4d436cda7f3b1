"""Fast2SMS (India), Dev API ``bulkV2``, DLT routes.

Docs: https://docs.fast2sms.com/reference/dlt-manual-single (``dlt_manual``),
https://docs.fast2sms.com/reference/dlt-sms-single (``dlt``),
https://docs.fast2sms.com/reference/error-code-list (errors),
https://docs.fast2sms.com/reference/wallet-balance (wallet),
https://docs.fast2sms.com/reference/sms-webhook (delivery webhooks).

**Auth.** The API key in the ``authorization`` header of POST requests (GET requests would put
it in the query; none is made here).

**Send.** ``POST /dev/bulkV2`` with JSON, one 10-digit Indian number per request. Fast2SMS sends
to India only: a ``to`` that is not ``+91`` and ten digits is ``Reject("unsupported_destination")``
without a request. The account's ``route`` chooses the body:

- ``dlt_manual`` (default): ``{"route": "dlt_manual", "sender_id": "ACMEIN", "message": <the full
  text>, "template_id": <DLT template id>, "entity_id": <DLT entity id>, "numbers":
  "9876543210"}``. Both DLT ids are sent on every send (Fast2SMS would take them from its DLT
  Manager when left out, but a gateway that does not send them is not DLT compliant), so a
  message without either is rejected (``dlt_template_required``/``dlt_entity_required``).
- ``dlt``: ``{"route": "dlt", "sender_id": ..., "message": <DLT Manager Message_ID>,
  "variables_values": "v1|v2", "numbers": ...}``: a template registered in Fast2SMS's DLT
  Manager, named by the Message_ID that ``message_ids`` maps the DLT template id to (an unmapped
  one is ``Reject("dlt_message_id_unknown")``), its variables from
  ``OutboundSms.template_variables`` joined with ``|`` (a value holding ``|`` cannot be sent:
  ``Reject("invalid_template_variable")``). The DLT Manager holds the entity id for this route.

Every send needs the sender header (``Reject("sender_id_required")``). Answers::

    answer                                           outcome
    2xx {"return": true, "request_id": id, ...}      Accepted((id,), raw=body)
    {"return": false, "status_code": c, "message":   Reject(str(c), message): Fast2SMS answers
      m} at 2xx, 400 or 401                          errors with 400/401 and its own code
    2xx that is neither                              Reject("malformed_response")
    408, 429, 5xx, timeout, connection error         Retry (tidings.providers._http)

None of the documented codes means "busy, try later", so each is a ``Reject`` (416: no wallet
balance, 412/413: bad key, 424/425: unknown Message_ID or template, 500: template or sender
blacklisted at DLT, 995: the same text to the same number again).

**Webhook authentication.** Fast2SMS signs nothing. The webhook URL configured in the Fast2SMS
dashboard is the account's DLR URL with ``?token=<webhook token>``, compared in constant time.

**Delivery reports.** Fast2SMS's "Standard Webhook" lets the user choose the method (POST, GET,
PUT), the content type (JSON or form) and the body from its variables; the variable list of the
SMS webhook was not retrievable. Accepted here, leniently [U]: a JSON object or array of
objects, a form body, or (for GET) the query string, each report with ``request_id``, a
``status`` word (``STATUS_MAP``, case-insensitive, kept verbatim as ``provider_status``) and
optionally ``mobile``/``number`` and ``status_description``/``description`` (the
``error_detail`` of a failure). Configure the webhook with exactly these names. No event time is
read (``occurred_at`` is ``None``). No inbound SMS webhook is documented for SMS.

**Balance.** ``POST /dev/wallet`` with the key in the header (documented beside the GET form
``/dev/wallet?authorization=KEY``, which would put the key in URLs and logs); the answer's
``wallet`` verbatim, in INR. **Sender names**: the DLT Manager's listing API was not found in
the docs corpus; ``Unsupported()``.

**Verified** [D] = Fast2SMS documentation in the search corpora, [T] = third-party, [U] =
assumed:

- [D] ``/dev/bulkV2``, the ``authorization`` header, both routes' fields (``sender_id``,
  ``message``, ``template_id``, ``entity_id``, ``variables_values`` pipe-separated,
  ``numbers`` comma-separated 10-digit), JSON POST bodies;
- [D] the error table (HTTP 400/401 with ``status_code`` 401-417, 424-426, 500, 990, 995-999
  and their messages); [T] the error body ``{"return":false,"status_code":406,"message":
  "Invalid Sender ID"}`` at HTTP 400 (recorded answers in third-party clients and tests);
- [T] the success body ``{"return":true,"request_id":"zsnc51xrp4umh7o","message":["SMS sent
  successfully."]}`` (recorded in several third-party clients; Jina Connect's adapter reads
  ``return`` and ``request_id``);
- [D] the wallet endpoint (POST with the header, GET with the query parameter); [T] its answer
  ``{"return":true,"wallet":"75.0000","sms_count":300}`` (a third-party runbook);
- [D] the SMS webhook exists and is user-templated (method, content type, body); [U] every
  field name of its body and the status words (``Delivered``, ``Failed``, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidings.domain.states import MessageState
from tidings.providers._http import (
    clean_reason,
    json_or_none,
    outcome_from_response,
    outcome_from_transport_error,
    query_failure,
    validation_summary,
    verify_url_token,
    webhook_reports,
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

slug: Final = "fast2sms"
default_base_url: Final = "https://www.fast2sms.com"

SEND_PATH: Final = "/dev/bulkV2"
WALLET_PATH: Final = "/dev/wallet"
"""The query parameter of the webhook URL that carries the account's webhook token."""
CURRENCY: Final = "INR"

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "sent": MessageState.SENT,
    "submitted": MessageState.SENT,
    "pending": MessageState.SENT,
    "delivered": MessageState.DELIVERED,
    "failed": MessageState.FAILED,
    "undelivered": MessageState.FAILED,
    "rejected": MessageState.FAILED,
    "expired": MessageState.FAILED,
    "blocked": MessageState.FAILED,
    "dnd": MessageState.FAILED,
}
"""Delivery-report status words, lower-cased [U]; any other word is ``UnknownStatus``."""

webhook_ack: Final = WebhookAck()

_INDIAN_MOBILE: Final = re.compile(r"\+91([0-9]{10})")


class Credentials(BaseModel):
    """The Fast2SMS API key, as the Dev API page of the dashboard shows it."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(pattern=r"^[A-Za-z0-9]{16,200}$",
                         description="Fast2SMS API authorization key: letters and digits")


class Config(BaseModel):
    """``route``: ``"dlt_manual"`` sends the text with its DLT ids; ``"dlt"`` sends a template
    stored in Fast2SMS's DLT Manager, and then needs ``message_ids``, mapping each DLT template
    id to its DLT Manager Message_ID."""

    model_config = ConfigDict(extra="forbid")

    route: Literal["dlt_manual", "dlt"] = "dlt_manual"
    message_ids: dict[str, str] = Field(default_factory=dict)

    @field_validator("message_ids")
    @classmethod
    def _message_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for dlt_id, message_id in value.items():
            if not re.fullmatch(r"[0-9]{1,30}", dlt_id):
                raise ValueError(f"{dlt_id!r} is not a DLT template id (digits only)")
            if not re.fullmatch(r"[0-9]{1,20}", message_id):
                raise ValueError(f"Message_ID for {dlt_id!r} must be digits")
        return value

    @model_validator(mode="after")
    def _dlt_needs_message_ids(self) -> Config:
        if self.route == "dlt" and not self.message_ids:
            raise ValueError("the dlt route needs message_ids (DLT template id -> Message_ID)")
        return self


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message through ``bulkV2`` on the account's route; see the module docstring for
    the body of each route and the answer-to-outcome table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")``,
    ``Reject("unsupported_destination")``, ``Reject("sender_id_required")``,
    ``Reject("dlt_template_required" | "dlt_entity_required")``,
    ``Reject("dlt_message_id_unknown")`` and ``Reject("invalid_template_variable")``.
    """
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        return Reject(f"invalid_{which}", validation_summary(exc))
    body = _body(message, config)
    if isinstance(body, Reject):
        return body
    url = account.base_url.rstrip("/") + SEND_PATH
    headers = {"authorization": credentials.api_key, "accept": "application/json"}
    try:
        response = await http.post(url, json=body, headers=headers)
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if response.status_code in (400, 401):
        error = _fast2sms_error(response)
        if error is not None:
            return Reject(error[0], clean_reason(error[1], secrets))
    return outcome_from_response(response, now=now, accepted=_accepted, secrets=secrets)


def _body(message: OutboundSms, config: Config) -> dict[str, str] | Reject:
    number = _INDIAN_MOBILE.fullmatch(message.to)
    if number is None:
        return Reject("unsupported_destination",
                      "Fast2SMS sends to Indian mobile numbers (+91 and 10 digits) only")
    if not message.sender_id:
        return Reject("sender_id_required", "Fast2SMS needs the DLT sender id (header)")
    if not message.dlt_template_id:
        return Reject("dlt_template_required", "a Fast2SMS DLT send needs a dlt_template_id")
    if config.route == "dlt":
        message_id = config.message_ids.get(message.dlt_template_id)
        if message_id is None:
            return Reject("dlt_message_id_unknown",
                          f"no DLT Manager Message_ID is configured for DLT template "
                          f"{message.dlt_template_id}")
        if any("|" in value for value in message.template_variables):
            return Reject("invalid_template_variable",
                          "a template variable holds '|', Fast2SMS's variable separator")
        body = {"route": "dlt", "sender_id": message.sender_id, "message": message_id}
        if message.template_variables:
            body["variables_values"] = "|".join(message.template_variables)
        body["numbers"] = number.group(1)
        return body
    if not message.dlt_entity_id:
        return Reject("dlt_entity_required", "a Fast2SMS DLT send needs a dlt_entity_id")
    return {
        "route": "dlt_manual",
        "sender_id": message.sender_id,
        "message": message.text,
        "template_id": message.dlt_template_id,
        "entity_id": message.dlt_entity_id,
        "numbers": number.group(1),
    }


def _accepted(response: httpx.Response) -> SendOutcome:
    body = json_or_none(response)
    if isinstance(body, dict) and body.get("return") is True:
        request_id = body.get("request_id")
        if isinstance(request_id, str | int) and not isinstance(request_id, bool) and request_id:
            return Accepted((str(request_id),), raw=body)
    error = _fast2sms_error(response)
    if error is not None:
        return Reject(*error)
    return Reject("malformed_response",
                  f"HTTP {response.status_code} without a request id: {response.text}")


def _fast2sms_error(response: httpx.Response) -> tuple[str, str] | None:
    """``(status_code, message)`` of a ``{"return": false, ...}`` body, else ``None``."""
    body = json_or_none(response)
    if not isinstance(body, dict) or body.get("return") is not False:
        return None
    code = body.get("status_code")
    if isinstance(code, bool) or not isinstance(code, int | str) or code == "":
        code = f"http_{response.status_code}"
    return str(code), _message_text(body.get("message"))


def _message_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "; ".join(value)
    return "" if value is None else json.dumps(value)


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """One event per report, in body order, from a JSON object or array, a form body, or the
    query string of a body-less request (the ``token`` parameter aside); field names as in the
    module docstring [U].

    Raises ``WebhookPayloadError`` for a body that cannot be read, or a report without
    ``request_id`` or ``status``.
    """
    return [_event(report) for report in webhook_reports(request)]


def _event(report: Mapping[str, Any]) -> WebhookEvent:
    request_id = report.get("request_id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int) or request_id == "":
        raise WebhookPayloadError("request_id is missing")
    status = report.get("status")
    if not isinstance(status, str) or not status.strip():
        raise WebhookPayloadError("status is missing")
    word = status.strip()
    state = STATUS_MAP.get(word.lower())
    if state is None:
        return UnknownStatus(provider_message_id=str(request_id), provider_status=word)
    detail = None
    if state is MessageState.FAILED:
        for name in ("status_description", "description"):
            value = report.get(name)
            if isinstance(value, str) and value.strip():
                detail = value.strip()
                break
    return StatusUpdate(provider_message_id=str(request_id), state=state, provider_status=word,
                        error_detail=detail)


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """The wallet balance verbatim, in INR. Raises ``ProviderError`` for an invalid stored
    account, a transport error, an error answer (with Fast2SMS's code) or an answer without a
    ``wallet``."""
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
    except pydantic.ValidationError as exc:
        raise ProviderError(Reject("invalid_credentials", validation_summary(exc))) from None
    url = account.base_url.rstrip("/") + WALLET_PATH
    headers = {"authorization": credentials.api_key, "accept": "application/json"}
    try:
        response = await http.post(url, headers=headers)
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    error = _fast2sms_error(response)
    if error is not None and (response.is_success or response.status_code in (400, 401)):
        raise ProviderError(Reject(error[0], clean_reason(error[1], secrets)))
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    try:  # floats kept as written: "wallet": 123.40 stays "123.40"
        body = json.loads(response.text, parse_float=str)
    except ValueError:
        body = None
    wallet = body.get("wallet") if isinstance(body, dict) else None
    if isinstance(wallet, bool) or not isinstance(wallet, str | int) or wallet == "":
        raise ProviderError(Reject("malformed_response",
                                   clean_reason("the wallet answer has no balance: "
                                                f"{response.text}", secrets)))
    return Balance(amount=str(wallet), currency=CURRENCY)


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """No documented listing found: always ``Unsupported()``."""
    return Unsupported()


# --- helpers -------------------------------------------------------------------------------------
