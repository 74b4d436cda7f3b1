"""Mora SMS (Saudi Arabia, mora-sa.com), HTTP API v1.

Docs: https://home.mora-sa.com/?p=227341 ("Mora SMS API", base URL ``https://mora-sa.com/api/v1/``;
only the part up to the send examples could be retrieved from the search corpora).

**Auth.** The account's ``api_key`` and ``username``, sent as parameters of every request (no
header scheme exists). Sends carry them in the form body of a POST, so they stay out of URLs;
the balance query is the GET form third-party clients use, with both in the query string, so
every reason is redacted and transport reasons lose their URL.

**Send.** ``POST /api/v1/sendsms``, ``application/x-www-form-urlencoded``::

    api_key=...&username=...&message=<text>&sender=<sender name>&numbers=966501234567
      &return=json

``numbers`` is the recipient in international form without ``+`` (Mora takes a comma-separated
list; one number per request here). ``sender`` is the message's sender, else the config's
``sender``; Mora requires one, so a message with neither is ``Reject("sender_id_required")``
without a request. ``datetime`` (Mora's own scheduling) is never sent: the pipeline schedules.
Mora takes no idempotency key and no encoding flag is documented, so neither is sent.

The JSON answer is an envelope ``{"status": {"code": 200, "message": ...}, "data": {"code":
100, "message": ..., "ref_id": ..., "timestamp": ...}}``; ``data.code`` is Mora's result code
(``100``: the numbers were received), ``status`` the request's own status::

    answer                                     outcome
    data.code 100 (int or string)              Accepted((str(data.ref_id),), raw=body), or
                                               Accepted((), raw=body) without a ref_id: Mora
                                               took it, so it must not be sent again
    data.code c != 100, at 2xx or a 4xx        Reject(str(c), data.message, else the code's
      other than 408/429                       text in ERROR_CODES, else status.message, else
                                               "Mora error <c>")
    no data.code but status.code != 200        Reject(str(status.code), status.message)
    a plain-text body of digits (Mora's        "100" -> Accepted(()); any other code -> Reject
      ``return=text`` format)                  as above
    2xx that is none of these                  Reject("malformed_response"): Mora may have
                                               taken it, so it is not retried on this account
    other 4xx without Mora's envelope          Reject("http_<status>", body)
    408, 429 (Retry-After honoured), 5xx,      Retry (tidings.providers._http)
      timeout, connection error

Every documented result code is permanent for the account (no money, sender name missing or
blocked, no valid number, banned words, account suspended or not activated, empty fields): none
means "busy, try later", so each is a ``Reject``, and so is an unknown code (never guessed as
retryable). No request is made for a ``to`` that is not E.164 (``Reject("invalid_number")``) or
for an account that no longer validates (``Reject("invalid_credentials" | "invalid_config")``).

**Webhooks.** Mora documents no delivery-report or inbound-SMS callback, and no third-party
client uses one. ``verify_webhook`` still guards the account's webhook routes with the URL
token (``?token=<webhook token>``, constant time) and ``parse_webhook`` answers ``[]`` for every
verified request: nothing is recorded and no status word is guessed (``STATUS_MAP`` is empty).
Messages sent through Mora therefore stay ``sent``.

**Balance.** ``GET /api/v1/balance?api_key=...&username=...``; the answer's ``data.balance``
verbatim (``Balance(amount, None)``: the unit, SAR or message points, is not documented).
**Sender names**: the docs list "manage sender names" among the features, but the endpoint's
path and answer could not be retrieved and no client calls it: ``Unsupported()``.

**Verified** [D] = Mora's documentation page in the search corpora, [T] = third-party code,
[U] = assumed:

- [D] the base URL ``https://mora-sa.com/api/v1/``, ``/sendsms`` by POST or GET, ``api_key``
  and ``username`` in every request, the required ``message``, ``sender`` and ``numbers``
  (comma-separated, ``966501234567`` form), optional ``datetime`` (``YYYY-MM-DD HH:MM:SS``) and
  ``return`` (``json``, the default, or ``text``), and a form-encoded ``curl -X POST -d`` example
  (home.mora-sa.com/?p=227341); the docs also name a balance check and sender-name management;
- [T] the envelope: ``data.code == 100`` as success (a Laravel ``MoraSMSService`` that also
  reads ``status.message`` on failure; AhmedShahine1/JamalKhanah
  ``JamalKhanah.BusinessLayer/Services/SmsService.cs`` checking ``Status.code == 200 &&
  Data.code == 100``), ``data.message``, ``data.ref_id`` and ``data.timestamp`` (a Django
  attendance service's Mora client, which stores ``ref_id`` as the message id); plain ``100``
  for ``response=text`` (C# clients parsing the body as an integer);
- [T] the result codes 100, 105-108, 112, 114-119 and their texts (two independent lists:
  Mahmoudali55/car ``assets/mora_sms_error_codes.json`` and the same Django client); [U] codes
  outside that list (e.g. for a wrong key or username, which no source shows) and the HTTP status
  error answers come with (2xx and 4xx are both handled);
- [T] ``GET https://www.mora-sa.com/api/v1/balance`` with ``api_key`` and ``username`` in the
  query, answering ``data.balance`` (the same Laravel ``MoraSMSService``); [U] the balance's
  unit and type (kept verbatim either way);
- [U] that Mora sends no delivery reports (none documented, none consumed by any client found),
  and the sender-name endpoint (not found).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

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
    Unsupported,
    WebhookAck,
    WebhookEvent,
    WebhookRequest,
)

slug: Final = "mora"
default_base_url: Final = "https://mora-sa.com"

SEND_PATH: Final = "/api/v1/sendsms"
BALANCE_PATH: Final = "/api/v1/balance"
SUCCESS_CODE: Final = "100"

ERROR_CODES: Final[Mapping[str, str]] = {
    "100": "Numbers received successfully",
    "105": "Insufficient balance",
    "106": "Sender name not available",
    "107": "Sender name is blocked",
    "108": "No valid numbers for sending",
    "112": "Message contains prohibited words",
    "114": "Account is suspended",
    "115": "Mobile number not activated",
    "116": "Email not activated",
    "117": "Empty message cannot be sent",
    "118": "Sender name is empty",
    "119": "No recipient number provided",
}
"""Mora's result codes with their English texts [T]; the text is the reason when Mora's answer
carries none. Every code but 100 is a ``Reject``."""

STATUS_MAP: Final[Mapping[str, MessageState]] = {}
"""Empty: Mora documents no delivery reports, so no status word is mapped (see the module
docstring)."""

webhook_ack: Final = WebhookAck()

_E164: Final = re.compile(r"\+([1-9][0-9]{6,14})")
_DIGITS: Final = re.compile(r"[0-9]{1,4}")


class Credentials(BaseModel):
    """The API key and the account's username, as Mora's control panel shows them."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(pattern=r"^[A-Za-z0-9]{20,128}$",
                         description="Mora API key: 20 to 128 letters and digits")
    username: str = Field(pattern=r"^[A-Za-z0-9._@+-]{3,100}$",
                          description="the Mora account's username (often its mobile number)")


class Config(BaseModel):
    """``sender``: the sender name used when a message names none. Mora requires a sender on
    every send, and only names registered on the account are accepted (code 106)."""

    model_config = ConfigDict(extra="forbid")

    sender: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._&-]{0,15}$")


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message through ``/api/v1/sendsms``; see the module docstring for the form and
    the answer-to-outcome table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")``,
    ``Reject("invalid_number")`` and ``Reject("sender_id_required")``.
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
        return Reject("invalid_number", "the recipient is not an E.164 number")
    sender = message.sender_id or config.sender
    if not sender:
        return Reject("sender_id_required",
                      "Mora needs a sender name: set one on the message or the account")
    form = {
        "api_key": credentials.api_key,
        "username": credentials.username,
        "message": message.text,
        "sender": sender,
        "numbers": number.group(1),
        "return": "json",
    }
    url = account.base_url.rstrip("/") + SEND_PATH
    try:
        response = await http.post(url, data=form, headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if 400 <= response.status_code <= 499 and response.status_code not in (408, 429):
        error = _mora_error(response)
        if error is not None:
            return Reject(error[0], clean_reason(error[1], secrets))
    return outcome_from_response(response, now=now, accepted=_accepted, secrets=secrets)


def _accepted(response: httpx.Response) -> SendOutcome:
    """A 2xx answer: Mora's result code decides."""
    text = response.text.strip()
    if _DIGITS.fullmatch(text):
        if text == SUCCESS_CODE:
            return Accepted((), raw={"code": int(text)})
        return Reject(text, ERROR_CODES.get(text, f"Mora error {text}"))
    body = json_or_none(response)
    code = _result_code(body)
    if code == SUCCESS_CODE and isinstance(body, dict):
        data = body.get("data")
        ref_id = data.get("ref_id") if isinstance(data, dict) else None
        return Accepted((_text(ref_id),) if _text(ref_id) else (), raw=body)
    error = _mora_error(response)
    if error is not None:
        return Reject(*error)
    return Reject("malformed_response",
                  f"HTTP {response.status_code} without a Mora result code: {response.text}")


def _result_code(body: object) -> str | None:
    """``data.code`` of the envelope (else a top-level ``code``) as a string, or ``None``."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    code = _text(data.get("code")) if isinstance(data, dict) else ""
    return code or _text(body.get("code")) or None


def _mora_error(response: httpx.Response) -> tuple[str, str] | None:
    """``(code, reason)`` of a Mora failure answer (a result code other than 100, or a status
    block other than 200), else ``None``."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        return None
    code = _result_code(body)
    if code is not None and code != SUCCESS_CODE:
        data = body.get("data")
        text = _text(data.get("message")) if isinstance(data, dict) else ""
        text = (text or _text(body.get("message")) or ERROR_CODES.get(code)
                or _status_message(body))
        return code, text or f"Mora error {code}"
    status = body.get("status")
    if code is None and isinstance(status, dict):
        status_code = _text(status.get("code"))
        if status_code and status_code != "200":
            return status_code, _status_message(body) or f"Mora status {status_code}"
    return None


def _status_message(body: Mapping[str, Any]) -> str:
    status = body.get("status")
    return _text(status.get("message")) if isinstance(status, dict) else ""


def _text(value: object) -> str:
    """A string or integer field as text, stripped; ``""`` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """Always ``[]``: Mora documents no delivery-report or inbound callback, so a verified
    request carries nothing this module can read without guessing."""
    return []


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """``data.balance`` verbatim, unit unknown (``currency`` ``None``). Raises
    ``ProviderError`` for an invalid stored account, a transport error, an error answer (with
    Mora's code where it gives one) or an answer without a balance."""
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
    except pydantic.ValidationError as exc:
        raise ProviderError(Reject("invalid_credentials", validation_summary(exc))) from None
    url = account.base_url.rstrip("/") + BALANCE_PATH
    params = {"api_key": credentials.api_key, "username": credentials.username}
    try:
        response = await http.get(url, params=params, headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    retryable = response.status_code in (408, 429) or response.status_code >= 500
    error = _mora_error(response)
    if error is not None and not retryable:
        raise ProviderError(Reject(error[0], clean_reason(error[1], secrets)))
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    try:  # floats kept as written: "balance": 120.50 stays "120.50"
        body = json.loads(response.text, parse_float=str)
    except ValueError:
        body = None
    data = body.get("data") if isinstance(body, dict) else None
    amount = data.get("balance") if isinstance(data, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, str | int) or str(amount).strip() == "":
        raise ProviderError(Reject("malformed_response",
                                   clean_reason(f"the balance answer has no data.balance: "
                                          f"{response.text}", secrets)))
    return Balance(amount=str(amount).strip(), currency=None)


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """The sender-name endpoint could not be verified: always ``Unsupported()``."""
    return Unsupported()


# --- helpers -------------------------------------------------------------------------------------
