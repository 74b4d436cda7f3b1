"""Taqnyat (Saudi Arabia), SMS REST API v1.

Docs: https://dev.taqnyat.sa/en/doc/sms/ (base URL, bearer token, international numbers without
``+``/``00``, active sender names), https://docs.taqnyat.sa/support/error-code-reference (error
codes). Official clients: ``taqnyat/python`` (``TaqnyatSms.py``, ``taqnyat.py``) and
``taqnyat/php`` (``TaqnyatSms.php``).

**Auth.** ``Authorization: Bearer <token>`` on every call; the token is generated in the Taqnyat
panel and is the only credential.

**Send.** ``POST /v1/messages`` with JSON, one recipient per request (the API takes up to 1000;
the pipeline sends one message per recipient)::

    {"recipients": ["966501234567"], "body": "<text, UTF-8>", "sender": "<active sender name>"}

The sender is the message's, else the config's ``sender_id``; Taqnyat has no default sender, so
a message with neither is rejected without a request. ``scheduledDatetime`` and ``deleteId``
(schedule a send, and name it for a later ``DELETE /v1/messages``) are never sent: Tidings
schedules in its own pipeline and hands a provider only messages that are due. Taqnyat
documents no idempotency key (the official PHP README's ``smsId`` is undescribed), so a send
that times out may be sent twice (at-least-once, as ``SmsProvider.send`` says). Success is
HTTP 201 with::

    {"statusCode": 201, "messageId": 5452899970, "cost": 0.026, "currency": "SAR",
     "totalCount": 1, "msgLength": 1, "accepted": "[966500000000,]", "rejected": "[]"}

``messageId`` is a number (kept as its decimal string); ``accepted``/``rejected`` are strings
that look like lists of numbers, read by the digit runs they contain. Errors are
``{"statusCode": <code>, "message": "<text>"}``::

    answer                                          outcome
    2xx with messageId, recipient not rejected      Accepted((str(messageId),), raw=body)
    2xx with messageId, recipient only in rejected  Reject("recipient_rejected", ...)
    {"statusCode": c, "message": m} with c not 2xx  Reject(str(c), m): at any 2xx, and at any
      (401 "invalid credentials information",       4xx but 408/429 (Taqnyat documents no
      104 "Invalid Bearer Tokens", ...)             "busy" code to retry on)
    2xx that is none of these                       Reject("malformed_response"): Taqnyat may have
                                                    taken it, so it is not retried here
    408, 429, 5xx, timeout, connection error        Retry (tidings.providers._http)

**Delivery reports.** Not documented in any source found: the stored pages of Taqnyat's docs
describe no DLR callback, and the only third-party receiver (a "webhook pass phrase" echoed back
in the answer) guesses its field names (``msgid`` or ``messageId``, ``status`` or
``deliveryStatus``). So nothing is parsed: ``verify_webhook`` still checks the account's URL
token (``?token=``, constant time), and ``parse_webhook`` answers ``[]`` for every verified
request, whatever its body. ``STATUS_MAP`` is empty for the same reason. Messages sent through
Taqnyat therefore stay ``sent`` unless a later, documented report format is added here.

**Balance.** ``GET /account/balance`` answers ``{"statusCode": 200, "accountStatus": "active",
"accountExpiryDate": "23-08-2021", "balance": "2044.000", "currency": "SAR"}``:
``Balance(balance verbatim, currency)``. **Sender names.** ``GET /v1/messages/senders``
answers ``{"senders": [...]}``; every entry's name is returned in order, unfiltered (the
statuses' words are undocumented).

**Verified** [D] = Taqnyat's own docs or official clients in the search corpora, [T] =
third-party code, [U] = assumed:

- [D] base ``https://api.taqnyat.sa``, the bearer header, recipients in international format
  without ``+`` or ``00``, an active sender name being required (dev.taqnyat.sa/en/doc/sms);
- [D] ``POST /v1/messages`` with JSON ``recipients`` (array), ``body``, ``sender``;
  ``GET /account/balance``; ``GET /v1/messages/senders``; ``DELETE /v1/messages``;
  ``GET /system/status`` without auth (taqnyat/python ``TaqnyatSms.py`` and ``taqnyat.py``,
  taqnyat/php ``TaqnyatSms.php``). The schedule field is ``scheduledDatetime`` in
  ``taqnyat.py`` (and al-saloul/taqnyat) but ``scheduled`` in the newer ``TaqnyatSms.py``:
  unresolved, and moot here because it is never sent;
- [D] error codes 101 "sending by API is disabled", 102 "this ip ... Not authorized to using
  the API", 104 "Invalid Bearer Tokens" (docs.taqnyat.sa error-code reference; the stored copy
  shows them under the e-mail section only);
- [T] the success body, the balance body and the 401 error body
  ``{"statusCode": 401, "message": "invalid credentials information"}`` (fixtures of
  Fateel-Tech/taqnyat-sms-laravel ``tests/Fixtures``, matching the fields other clients read);
  [U] the HTTP status each comes with (the body's ``statusCode`` decides either way);
- [T] the senders body: ``senders`` entries are objects with ``senderName`` (plus ``status``,
  ``destination``) in one client, ``name`` or ``sender`` in others, or plain strings; all four
  are read;
- [U] the token's alphabet and length (letters, digits, ``.``, ``_``, ``-``; 16 to 256);
- [U] delivery reports, as said above: none parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field

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
    WebhookAck,
    WebhookEvent,
    WebhookRequest,
)

slug: Final = "taqnyat"
default_base_url: Final = "https://api.taqnyat.sa"

MESSAGES_PATH: Final = "/v1/messages"
BALANCE_PATH: Final = "/account/balance"
SENDERS_PATH: Final = "/v1/messages/senders"

STATUS_MAP: Final[Mapping[str, MessageState]] = {}
"""Taqnyat documents no delivery-report status words; none are mapped (see the module
docstring)."""

webhook_ack: Final = WebhookAck()

_E164: Final = re.compile(r"\+([1-9][0-9]{6,14})")
_DIGITS: Final = re.compile(r"[0-9]+")
_SENDER_KEYS: Final = ("senderName", "name", "sender")


class Credentials(BaseModel):
    """The bearer token generated in the Taqnyat panel."""

    model_config = ConfigDict(extra="forbid")

    bearer_token: str = Field(pattern=r"^[A-Za-z0-9._-]{16,256}$",
                              description="Taqnyat bearer token: 16 to 256 letters, digits, "
                                          "'.', '_' or '-'")


class Config(BaseModel):
    """``sender_id``: the sender name used when a message names none. Taqnyat has no default
    sender of its own, so an account without one needs every message to carry a sender."""

    model_config = ConfigDict(extra="forbid")

    sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._&-]{0,15}$")


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message to one recipient through ``POST /v1/messages``; see the module
    docstring for the answer-to-outcome table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")`` when the
    stored account no longer validates, ``Reject("invalid_number")`` for a ``to`` that is not
    E.164, and ``Reject("sender_required")`` when neither the message nor the config names a
    sender.
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
    sender = message.sender_id or config.sender_id
    if not sender:
        return Reject("sender_required",
                      "Taqnyat needs an active sender name: the message and the account name none")
    recipient = number.group(1)
    body = {"recipients": [recipient], "body": message.text, "sender": sender}
    url = account.base_url.rstrip("/") + MESSAGES_PATH
    try:
        response = await http.post(url, json=body, headers=_headers(credentials))
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if response.is_client_error and response.status_code not in (408, 429):
        error = _taqnyat_error(response)
        if error is not None:
            return Reject(error[0], clean_reason(error[1], secrets))
    return outcome_from_response(
        response, now=now, accepted=lambda answer: _accepted(answer, recipient), secrets=secrets)


def _headers(credentials: Credentials) -> dict[str, str]:
    return {"authorization": f"Bearer {credentials.bearer_token}", "accept": "application/json"}


def _accepted(response: httpx.Response, recipient: str) -> SendOutcome:
    error = _taqnyat_error(response)
    if error is not None:
        return Reject(*error)
    body = json_or_none(response)
    message_id = body.get("messageId") if isinstance(body, dict) else None
    if isinstance(body, dict) and _is_id(message_id):
        if recipient in _numbers(body.get("rejected")) and (
                recipient not in _numbers(body.get("accepted"))):
            return Reject("recipient_rejected", f"Taqnyat rejected the recipient {recipient}")
        return Accepted((str(message_id),), raw=body)
    return Reject("malformed_response",
                  f"HTTP {response.status_code} without a messageId: {response.text}")


def _is_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and value >= 0) or (isinstance(value, str) and bool(value))


def _numbers(value: object) -> set[str]:
    """The numbers in Taqnyat's ``accepted``/``rejected``: a string such as
    ``"[966500000000,]"`` (or, defensively, a JSON list)."""
    if isinstance(value, str):
        return set(_DIGITS.findall(value))
    if isinstance(value, list):
        return {str(item) for item in value
                if isinstance(item, int | str) and not isinstance(item, bool)}
    return set()


def _taqnyat_error(response: httpx.Response) -> tuple[str, str] | None:
    """``(statusCode, message)`` of a body whose ``statusCode`` is not 2xx, else ``None``."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        return None
    code = body.get("statusCode")
    if isinstance(code, bool) or not isinstance(code, int | str) or str(code).strip() == "":
        return None
    code_text = str(code).strip()
    if code_text.isdigit() and 200 <= int(code_text) <= 299:
        return None
    text = body.get("message")
    return code_text, text if isinstance(text, str) else ("" if text is None else json.dumps(text))


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """Always ``[]``: Taqnyat documents no delivery-report or inbound payload, so nothing is
    read from the body (see the module docstring). Never raises."""
    return []


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """The account balance verbatim with its currency (``SAR``). Raises ``ProviderError`` for an
    invalid stored account, a transport error, an error answer (with Taqnyat's code) or an
    answer without a ``balance``."""
    response = await _query(account, http, BALANCE_PATH)
    try:  # numbers kept as written: "balance": 2044.000 stays "2044.000"
        body = json.loads(response.text, parse_float=str)
    except ValueError:
        body = None
    amount = body.get("balance") if isinstance(body, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, str | int) or str(amount) == "":
        raise ProviderError(Reject("malformed_response", clean_reason(
            f"the balance answer has no balance: {response.text}", account.secrets())))
    currency = body.get("currency") if isinstance(body, dict) else None
    return Balance(amount=str(amount),
                   currency=currency if isinstance(currency, str) and currency else None)


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str]:
    """The account's sender names in Taqnyat's order. Raises ``ProviderError`` like
    ``balance``, and for an answer without a ``senders`` list."""
    response = await _query(account, http, SENDERS_PATH)
    body = json_or_none(response)
    senders = body.get("senders") if isinstance(body, dict) else None
    if not isinstance(senders, list):
        raise ProviderError(Reject("malformed_response", clean_reason(
            f"the senders answer has no senders list: {response.text}", account.secrets())))
    names = []
    for entry in senders:
        name = entry if isinstance(entry, str) else _sender_name(entry)
        if name:
            names.append(name)
    return names


def _sender_name(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return None
    for key in _SENDER_KEYS:
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None


async def _query(account: AccountContext, http: httpx.AsyncClient, path: str) -> httpx.Response:
    """``GET path`` with the account's token; the answer when it is a success, else raises
    ``ProviderError`` (Taqnyat's own code when the body carries one)."""
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
    except pydantic.ValidationError as exc:
        raise ProviderError(Reject("invalid_credentials", validation_summary(exc))) from None
    try:
        response = await http.get(account.base_url.rstrip("/") + path,
                                  headers=_headers(credentials))
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    error = _taqnyat_error(response)
    if error is not None and (response.is_success or (
            response.is_client_error and response.status_code not in (408, 429))):
        raise ProviderError(Reject(error[0], clean_reason(error[1], secrets)))
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    return response


# --- helpers -------------------------------------------------------------------------------------
