"""Infobip SMS API v3 (``POST /sms/3/messages``).

Docs: https://www.infobip.com/docs/api/channels/sms (SMS API),
https://www.infobip.com/docs/essentials/api-essentials/response-status-and-error-codes (status
and error codes), https://www.infobip.com/docs/sms/sms-over-api (delivery reports).

**Version.** ``POST /sms/3/messages`` is the current send API: Infobip's page for the v2
``POST /sms/2/text/advanced`` says it "has been superseded. Please visit Send SMS message for
the next version", and Infobip's own client libraries send through ``/sms/3/messages``. The v2
endpoint still answers but is not used here; its per-message ``notifyUrl`` is
``webhooks.delivery.url`` in v3.

**Base URL.** Every Infobip account has its own API host, ``https://<subdomain>.api.infobip.com``
(shown on the portal's homepage beside the API key). It is the required ``base_url`` field of
the account's **config**, not of its credentials: it authenticates nothing (the API key does),
so it need not be encrypted or redacted, and keeping it visible in the app's config lets an
operator see which endpoint an app talks to. It must be exactly ``https://`` plus a host under
``.api.infobip.com`` (no path, port, query or user info), so that a tenant cannot point the
gateway, and its API key, at another host. The operator's ``TIDINGS_PROVIDER_URL_INFOBIP``
still wins: when ``account.base_url`` is anything but ``default_base_url`` (the legacy shared
host ``https://api.infobip.com``, which is never called), it was overridden, and every request
goes there instead (regional endpoints, tests, the benchmark's fake).

**Auth.** ``Authorization: App <api key>`` on every request.

**Send.** One message, one destination per request, JSON::

    {"messages": [{"sender": <sender_id, left out for the account's default sender>,
                   "destinations": [{"to": <E.164 without "+">}],
                   "content": {"text": <text>},
                   "options": {"regional": {"indiaDlt": {"principalEntityId": ...,
                                                          "contentTemplateId": ...}}},
                   "webhooks": {"delivery": {"url": <status_callback_url or DLR URL>},
                                "contentType": "application/json"}}]}

``options`` only with a DLT entity id (``principalEntityId`` is required in ``indiaDlt``).
Infobip detects the encoding itself; no idempotency key exists (a timed-out send may be sent
twice). Answers::

    answer                                           outcome
    200 {"bulkId", "messages": [{"messageId",        Accepted((messageId,), raw=body)
      "status": {groupName PENDING/ACCEPTED...}}]}
    200 whose message status group is REJECTED,      Reject(status name, description):
      UNDELIVERABLE or EXPIRED                       refused at submission
    200 without a messageId                          Reject("malformed_response")
    4xx {"requestError": {"serviceException":        Reject(messageId, text [; validation
      {"messageId", "text", "validationErrors"}}}    errors]): UNAUTHORIZED, BAD_REQUEST...
    4xx {"errorCode", "description", ...}            Reject(errorCode, description)
    429, 408, 5xx (either body)                      Retry(the body's code or http_<status>,
                                                     ..., Retry-After)
    timeout, connection error                        outcome_from_transport_error

**Webhook authentication.** Infobip signs nothing it pushes to a per-message delivery URL
(signing exists only for Subscriptions-managed webhooks, not used here). The DLR and inbound
URLs carry ``?token=<webhook token>``, compared in constant time (``verify_url_token``).

**Delivery reports** are POSTed as JSON ``{"results": [report, ...]}``, each with
``messageId``, ``to``, ``sender``, ``sentAt``, ``doneAt`` (``yyyy-MM-dd'T'HH:mm:ss.SSSZ``),
``messageCount``, ``price``, ``status`` ``{groupId, groupName, id, name, description}`` and
``error`` ``{groupId, groupName, id, name, description, permanent}`` (id 0 ``NO_ERROR`` when
fine). The state comes from the status group (``STATUS_MAP``), except ``DELIVERED_TO_OPERATOR``
(group DELIVERED) which only means the operator took it, so it is ``sent``. ``provider_status``
is the status ``name`` (``DELIVERED_TO_HANDSET``), the group name without one; a failure keeps
the error ``id`` as ``error_code`` and ``name: description`` as ``error_detail``;
``occurred_at`` is ``doneAt``. **Inbound messages** forwarded from a number come to the inbound
URL as ``{"results": [{"messageId", "from", "to", "text", "cleanText", "keyword",
"receivedAt", "smsCount", ...}], "messageCount", "pendingMessageCount"}``; ``from``/``to`` are
international numbers without ``+``, given one here when they have 8 digits or more (shorter
ones are short codes and stay as they are).

**Balance.** ``GET /account/1/balance`` answers ``{"balance": 47.79134, "currency": "EUR"}``;
the number is kept verbatim as written in the JSON (never through a float).

**Sender names.** ``GET /numbers/1/numbers``: the account's numbers with SMS capability, from
the first page (the default page size). Alphanumeric sender names have no listing in Infobip's
API (they are registered by resource requests), so they are not listed.

**Verified** [D] = Infobip's documentation or its official client libraries (repositories
infobip/infobip-api-python-client, infobip/infobip-api-java-client), [T] = third-party code,
[U] = assumed:

- [D] ``POST /sms/3/messages`` (``infobip_api_client/api/sms_api.py``), 200 ``SmsResponse``,
  400/401/403/500 errors; the request fields ``sender``, ``destinations[].to``,
  ``content.text``, ``options.regional.indiaDlt.{principalEntityId, contentTemplateId}``,
  ``webhooks.{delivery.url, contentType, callbackData}`` (``models/sms_message.py``,
  ``sms_webhooks.py``, ``sms_message_delivery_reporting.py``, ``sms_india_dlt_options.py``);
  the answer ``{"bulkId", "messages": [{"messageId", "status", "destination", "details"}]}``
  and the delivery-report and inbound webhook bodies (``tests/api/test_sms_api.py``); the
  superseding of ``/sms/2/text/advanced`` (infobip.com docs page for that endpoint);
- [D] the status groups ACCEPTED, PENDING (1), UNDELIVERABLE (2), DELIVERED (3), EXPIRED (4),
  REJECTED (5) and their names (``models/message_general_status.py``, the response-status
  page); the ``App`` key prefix (``api_key_prefix="App"`` in the client's tests);
- [D] the error body ``{"requestError": {"serviceException": {"messageId": "UNAUTHORIZED",
  "text": "Invalid login details"}}}`` with ``validationErrors`` on 400
  (``tests/api/test_error_processing.py``, replayed against ``/sms/3/messages``) and the
  OpenAPI ``ApiError`` ``{errorCode, description, action, violations, resources}``: both are
  read, since the documentation declares one and the client's tests replay the other;
- [T] ``GET /account/1/balance`` answering ``balance`` and ``currency`` (several clients);
  [T] ``GET /numbers/1/numbers`` answering ``{"numbers": [{"number", "capabilities":
  ["SMS", ...]}]}`` (third-party clients) and, in the Java client's tests, ``{"results":
  [{"phoneNumber", "capabilities": {"sms": true}}]}``: both shapes are read;
- [U] that a send answered 200 with a REJECTED group took nothing (so it is a ``Reject``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidings.domain.states import MessageState
from tidings.providers._http import (
    clean_reason,
    failure_from_response,
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
    WebhookAck,
    WebhookEvent,
    WebhookPayloadError,
    WebhookRequest,
)

slug: Final = "infobip"
default_base_url: Final = "https://api.infobip.com"
"""Infobip's legacy shared host: a sentinel meaning "no operator override", never called."""

SEND_PATH: Final = "/sms/3/messages"
BALANCE_PATH: Final = "/account/1/balance"
NUMBERS_PATH: Final = "/numbers/1/numbers"

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "ACCEPTED": MessageState.SENT,
    "PENDING": MessageState.SENT,
    "DELIVERED": MessageState.DELIVERED,
    "UNDELIVERABLE": MessageState.FAILED,
    "EXPIRED": MessageState.FAILED,
    "REJECTED": MessageState.FAILED,
}
"""Infobip's status group names; any other group is ``UnknownStatus``."""

SENT_ONLY: Final = frozenset({"DELIVERED_TO_OPERATOR"})
"""Status names in the DELIVERED group that say only that the operator has the message."""

webhook_ack: Final = WebhookAck()

_REFUSED_GROUPS: Final = frozenset({"REJECTED", "UNDELIVERABLE", "EXPIRED"})
_HOST: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.api\.infobip\.com")
_SHORTEST_NUMBER: Final = 8


class Credentials(BaseModel):
    """The Infobip API key, as the portal's homepage or API-keys page shows it."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(pattern=r"^[A-Za-z0-9-]{20,200}$",
                         description="Infobip API key: letters, digits and '-'")


class Config(BaseModel):
    """``base_url``: the account's own API host, ``https://<subdomain>.api.infobip.com``
    (required; see the module docstring for why it is config and why the host is checked)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="https://<subdomain>.api.infobip.com")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError("must be https://<subdomain>.api.infobip.com") from None
        host = parts.hostname or ""
        if (parts.scheme != "https" or port is not None or parts.username or parts.password
                or parts.path not in ("", "/") or parts.query or parts.fragment
                or not _HOST.fullmatch(host) or parts.netloc.lower() != host):
            raise ValueError("must be https://<subdomain>.api.infobip.com")
        return f"https://{host}"


credentials_model = Credentials
config_model = Config


def api_base(account: AccountContext, config: Config) -> str:
    """Where requests go: the operator's override when there is one, else the account's host."""
    given = account.base_url.rstrip("/")
    return config.base_url if given == default_base_url else given


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message to one destination; see the module docstring for the body and the
    answer-to-outcome table.

    Answers ``Reject("invalid_credentials" | "invalid_config")`` without a request when the
    stored account no longer validates.
    """
    secrets = account.secrets()
    validated = _validated(account)
    if isinstance(validated, Reject):
        return validated
    credentials, config = validated
    entry: dict[str, Any] = {}
    if message.sender_id:
        entry["sender"] = message.sender_id
    entry["destinations"] = [{"to": message.to.removeprefix("+")}]
    entry["content"] = {"text": message.text}
    if message.dlt_entity_id:
        dlt = {"principalEntityId": message.dlt_entity_id}
        if message.dlt_template_id:
            dlt["contentTemplateId"] = message.dlt_template_id
        entry["options"] = {"regional": {"indiaDlt": dlt}}
    callback = message.status_callback_url or account.webhook_url_dlr
    if callback:
        entry["webhooks"] = {"delivery": {"url": callback}, "contentType": "application/json"}
    try:
        response = await http.post(api_base(account, config) + SEND_PATH,
                                   json={"messages": [entry]}, headers=_headers(credentials))
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    failure = failure_from_response(response, now=now, secrets=secrets)
    if failure is not None:
        return _with_infobip_error(failure, response, secrets)
    return _accepted(response, secrets)


def _accepted(response: httpx.Response, secrets: Iterable[str]) -> SendOutcome:
    body = _json(response)
    messages = body.get("messages") if isinstance(body, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    if not isinstance(body, dict) or not isinstance(first, dict) or not _text(
            first.get("messageId")):
        return Reject("malformed_response", clean_reason(
            f"HTTP {response.status_code} without a messageId: {response.text}", secrets))
    message_id = _text(first.get("messageId"))
    status = first.get("status")
    if isinstance(status, dict) and status.get("groupName") in _REFUSED_GROUPS:
        code = _text(status.get("name")) or _text(status.get("groupName"))
        return Reject(code, clean_reason(_text(status.get("description")) or code, secrets))
    return Accepted((message_id,), raw=body)


def _with_infobip_error(failure: Retry | Reject, response: httpx.Response,
                        secrets: Iterable[str]) -> Retry | Reject:
    """``failure`` (decided by the HTTP status) with Infobip's own code and text when the body
    is one of its error shapes."""
    error = _infobip_error(response)
    if error is None:
        return failure
    code, text = error[0], clean_reason(error[1], secrets)
    if isinstance(failure, Retry):
        return Retry(code, text, failure.retry_after)
    return Reject(code, text)


def _infobip_error(response: httpx.Response) -> tuple[str, str] | None:
    """``(code, text)`` of a ``requestError.serviceException`` or an ``ApiError`` body."""
    body = _json(response)
    if not isinstance(body, dict):
        return None
    request_error = body.get("requestError")
    if isinstance(request_error, dict):
        exception = request_error.get("serviceException") or request_error.get("policyException")
        if isinstance(exception, dict) and _text(exception.get("messageId")):
            text = _text(exception.get("text"))
            errors = exception.get("validationErrors")
            if isinstance(errors, dict) and errors:
                details = "; ".join(f"{field}: {', '.join(map(str, problems))}"
                                    if isinstance(problems, list) else f"{field}: {problems}"
                                    for field, problems in errors.items())
                text = f"{text}; {details}" if text else details
            return _text(exception.get("messageId")), text
    if _text(body.get("errorCode")):
        return _text(body.get("errorCode")), _text(body.get("description"))
    return None


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """One event per entry of ``results``, in body order: a delivery report (it has a
    ``status``) becomes a ``StatusUpdate`` or ``UnknownStatus``, an inbound message (``from``
    and ``text``) an ``InboundMessage``.

    Raises ``WebhookPayloadError`` for a body that is not a JSON object with a ``results``
    list, an entry without ``messageId``, a report whose ``status`` has no ``groupName``, and
    an entry that is neither a report nor an inbound message.
    """
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise WebhookPayloadError("the body is not JSON") from exc
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise WebhookPayloadError("the body has no results list")
    return [_event(entry) for entry in results]


def _event(entry: object) -> WebhookEvent:
    if not isinstance(entry, dict):
        raise WebhookPayloadError("a results entry is not an object")
    message_id = _text(entry.get("messageId"))
    if not message_id:
        raise WebhookPayloadError("messageId is missing")
    status = entry.get("status")
    if status is None:
        sender, recipient = _text(entry.get("from")), _text(entry.get("to"))
        if not sender or not recipient or "text" not in entry:
            raise WebhookPayloadError("neither a delivery report nor an inbound message (from, "
                                      "to and text)")
        return InboundMessage(provider_message_id=message_id, from_number=_number(sender),
                              to_number=_number(recipient), text=_text(entry.get("text")),
                              received_at=_date(entry.get("receivedAt")))
    if not isinstance(status, dict) or not _text(status.get("groupName")):
        raise WebhookPayloadError("the report's status has no groupName")
    group = _text(status.get("groupName"))
    name = _text(status.get("name"))
    state = STATUS_MAP.get(group)
    if state is None:
        return UnknownStatus(provider_message_id=message_id, provider_status=name or group)
    if name in SENT_ONLY:
        state = MessageState.SENT
    error_code = error_detail = None
    error = entry.get("error")
    failed = state is MessageState.FAILED and isinstance(error, dict)
    if failed and isinstance(error, dict) and error.get("id") not in (0, None):
        error_code = str(error["id"])
        parts = [_text(error.get("name")), _text(error.get("description"))]
        error_detail = ": ".join(part for part in parts if part) or None
    return StatusUpdate(provider_message_id=message_id, state=state, provider_status=name or group,
                        error_code=error_code, error_detail=error_detail,
                        occurred_at=_date(entry.get("doneAt")))


def _number(value: str) -> str:
    if value.isdigit() and len(value) >= _SHORTEST_NUMBER:
        return "+" + value
    return value


def _date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """``GET /account/1/balance``: the balance verbatim as the JSON writes it, and its currency.
    Raises ``ProviderError`` for an invalid stored account, a transport error, an error answer
    (with Infobip's code) or an answer without a balance."""
    body = await _get_json(account, http, BALANCE_PATH, verbatim=True)
    amount = body.get("balance")
    if not isinstance(amount, str) or not amount:
        raise ProviderError(Reject("malformed_response", "the balance answer has no balance"))
    currency = body.get("currency")
    return Balance(amount=amount, currency=currency if isinstance(currency, str) else None)


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str]:
    """The account's SMS-capable numbers (``GET /numbers/1/numbers``, first page), in either
    answer shape the module docstring names. Raises ``ProviderError`` as ``balance`` does."""
    body = await _get_json(account, http, NUMBERS_PATH)
    entries = body.get("numbers", body.get("results"))
    if not isinstance(entries, list):
        raise ProviderError(Reject("malformed_response", "the numbers answer has no list"))
    names: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        number = _text(entry.get("number")) or _text(entry.get("phoneNumber"))
        capabilities = entry.get("capabilities")
        sms = (isinstance(capabilities, list) and "SMS" in capabilities) or (
            isinstance(capabilities, dict) and capabilities.get("sms") is True)
        if number and sms:
            names.append(number)
    return names


async def _get_json(account: AccountContext, http: httpx.AsyncClient, path: str, *,
                    verbatim: bool = False) -> dict[str, Any]:
    """GET ``path`` and answer its JSON object (with ``verbatim``, every number kept as the
    text it was written as); raises ``ProviderError``."""
    secrets = account.secrets()
    validated = _validated(account)
    if isinstance(validated, Reject):
        raise ProviderError(validated)
    credentials, config = validated
    try:
        response = await http.get(api_base(account, config) + path, headers=_headers(credentials))
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(_with_infobip_error(failure, response, secrets))
    body = _json(response, verbatim=verbatim)
    if not isinstance(body, dict):
        raise ProviderError(Reject("malformed_response",
                                   clean_reason(f"{path} answered no JSON object", secrets)))
    return body


# --- helpers -------------------------------------------------------------------------------------


def _validated(account: AccountContext) -> tuple[Credentials, Config] | Reject:
    try:
        return (Credentials.model_validate(dict(account.credentials)),
                Config.model_validate(dict(account.config)))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        return Reject(f"invalid_{which}", clean_reason(validation_summary(exc), account.secrets()))


def _headers(credentials: Credentials) -> dict[str, str]:
    return {"authorization": f"App {credentials.api_key}", "accept": "application/json"}


def _json(response: httpx.Response, *, verbatim: bool = False) -> Any:
    """The JSON body, or ``None`` when it is not JSON; with ``verbatim``, every number is kept
    as the text it was written as (a balance is never rounded through a float)."""
    try:
        if verbatim:
            return json.loads(response.content, parse_float=str, parse_int=str)
        return json.loads(response.content)
    except ValueError:
        return None


def _text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""
