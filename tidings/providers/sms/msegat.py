"""Msegat (Saudi Arabia), the HTTP gateway API under ``https://www.msegat.com/gw/``.

Docs: https://msegat.docs.apiary.io/ (the official Apiary reference; its pages are not in the
search corpora, so everything below was checked against open-source clients that cite it, see
"Verified").

**Auth.** The account's ``userName`` and ``apiKey`` (from the Msegat dashboard), sent as fields
of every request body. No header, no signature.

**Send.** ``POST /gw/sendsms.php`` with JSON (``content-type: application/json``)::

    {"userName": ..., "apiKey": ..., "numbers": "966505980169", "userSender": "ACME",
     "msg": "...", "msgEncoding": "UTF8", "reqBulkId": "true", "reqFilter": "true"}

One recipient per request: ``numbers`` (comma-separated in the API) is the E.164 number without
``+``. ``userSender`` is the message's sender, else the config's ``sender_id``; Msegat has no
default sender, so a message with neither is ``Reject("sender_id_required")`` without a request.
``msgEncoding`` is always ``UTF8`` (the body is JSON, hence UTF-8; Msegat also takes
``windows-1256``). ``reqBulkId`` asks Msegat to return the request's bulk id, which becomes the
provider id (config ``request_bulk_id``); ``reqFilter`` asks it to drop duplicate numbers
(config ``filter_duplicates``); both are sent as the strings ``"true"``/``"false"``.
``timeToSend``/``exactTime`` (scheduling on Msegat's side) are never sent: the pipeline
schedules messages itself, so every send is "now". Msegat takes no idempotency key.

Answers are ``{"code": ..., "message": ...}``; a body that is a bare code (``1``, ``M0002``) is
read the same way::

    answer                                        outcome
    code "1" / "M0000" (an int 1 too)             Accepted((), raw=body)
    code "M0000-<bulk id>" / "1-<bulk id>"        Accepted((bulk id,), raw=body) (reqBulkId)
    any other code, at 2xx or a 4xx but 408/429   Reject(code, message): the body's message,
                                                  else the documented text in ERRORS
    2xx without a code                            Reject("malformed_response"): it may have
                                                  been taken, so it is not retried here
    other 4xx without a code                      Reject("http_<status>", body)
    408, 429 (Retry-After honoured), 5xx,         Retry (tidings.providers._http)
      timeout, connection error

None of Msegat's documented codes means "busy, try later", so every code is a ``Reject``: bad
login (``M0002``/``1020``), missing fields (``M0001``/``1010``), empty text (``1050``), no
balance (``1060``), duplicate (``1061``: Msegat refuses the same text to the same number again
within a short window [U for the window]; after a timeout this may mean the first attempt went
through), free-OTP content rule (``1064``), sender missing or not approved (``1110``), bad
numbers (``1120``), text too long (``1140``), and the sender-management codes ``M0022`` to
``M0036``. A ``to`` that is not E.164 is ``Reject("invalid_number")`` and an account that no
longer validates ``Reject("invalid_credentials" | "invalid_config")``, without a request.

**Delivery reports.** Msegat documents no push delivery report or signature scheme; its reports
are pulled (``POST /gw/getMessages.php`` with ``reqBulkId``, paginated), which this Protocol does
not do. The webhook routes still accept a relayed report (from an operator's poller, or a
dashboard webhook if Msegat enables one for the account) at the account's DLR URL with
``?token=<webhook token>``, compared in constant time. Accepted, leniently [U]: a JSON object
or array, a form body, or a body-less query string (``tidings.providers._http.webhook_reports``),
field names case-insensitive: the id in ``bulkId`` (else ``reqBulkId``, ``id``, ``messageId``),
the word in ``status`` (else ``dlr``), for a failure a description in ``description`` (else
``reason``, ``message``) and a code in ``errorCode``. ``STATUS_MAP`` maps the word; any other
word is ``UnknownStatus``. No event time is read. No inbound SMS webhook is documented.

**Balance.** ``POST /gw/Credits.php``, form-encoded ``userName``, ``apiKey``,
``msgEncoding=UTF8``; the answer is the balance as plain text (``3042.00``), kept verbatim with
no currency (Msegat sells credit in points [U]); an error comes as a bare code
(``BALANCE_ERRORS``: ``M0001``/``1010``, ``M0002``/``1020``; any other bare number is a balance),
or as the JSON envelope, and raises ``ProviderError(Reject(code, text))``.

**Sender names.** ``POST /gw/senders.php`` with JSON ``userName``, ``apiKey``,
``msgEncoding``. The answer's shape was not verifiable [U]: read here as a list of sender
objects, bare or under ``data``/``senders`` of the envelope, each with its name in ``sender``
(else ``SenderName``, ``senderName``, ``SenderID``, ``name``) and its state in ``status``;
senders whose status is neither absent nor ``Active``/``Activated``/``Approved``
(case-insensitive) are left out, since Msegat refuses sends from them (``1110``). An envelope
with an error code (``M0036`` "There is no any sender" included) raises ``ProviderError``.

**Verified** [T] = third-party code citing the Apiary reference, [U] = assumed:

- [T] the base ``https://www.msegat.com/gw/``, ``POST sendsms.php`` with a JSON body of
  ``userName``, ``apiKey``, ``numbers`` (comma-separated, international without ``+``),
  ``userSender``, ``msg``, ``msgEncoding`` (``UTF8``/``windows-1256``), optional ``reqBulkId``,
  ``reqFilter`` (default true), ``timeToSend`` (``now``/``later``) + ``exactTime``
  (``Y-m-d H:i:s``) (al-saloul/msegat-laravel ``src/MsegatClient.php`` and its tests,
  valinteca/msegat ``src/Msegat.php`` and ``README.md``, hossammonir/msegat
  ``src/Traits/MsegatAPIRequest.php``, aghfatehi/laravel-msegat ``src/MsegatManager.php``);
  [U] whether the flags must be strings or JSON booleans (strings are sent);
- [T] the success answer ``{"code": "1", "message": "Success"}`` / ``"M0000"``, and with
  ``reqBulkId`` the bulk id appended to the code after ``-`` (valinteca/msegat
  ``src/Responses/MsegatResponse.php``, aghfatehi/laravel-msegat ``src/DTOs/SmsResponse.php``);
  a bare-text ``1`` answer (al-saloul/msegat-laravel); [U] an ``id`` field instead;
- [T] the code table in ``ERRORS`` (identical in hossammonir/msegat
  ``src/Traits/MsegatErrorsCode.php``, michaelnabil230/laravel-msegat
  ``src/Responses/MsegatResponse.php``, valinteca/msegat, aghfatehi/laravel-msegat
  ``src/Enums/ResponseCode.php``); no code after ``M0036`` (e.g. up to ``M0060``) was found in
  any source, and unknown codes are kept verbatim as ``Reject``; [U] the HTTP status of error
  answers (200 in every client; a 4xx with the envelope is read the same way);
- [T] ``Credits.php`` (POST, form or multipart, ``userName``/``apiKey``/``msgEncoding``)
  answering a plain number such as ``3042.00``, or an error code as text (valinteca/msegat,
  aghfatehi/laravel-msegat ``src/MsegatClient.php`` and its tests);
- [T] ``senders.php`` (POST JSON ``userName``/``apiKey``/``msgEncoding``) (hossammonir/msegat,
  valinteca/msegat ``getSenders``); [U] its answer shape, as above (aghfatehi/laravel-msegat
  reads ``data[].sender``/``name`` and ``status``; another client names ``getSenders.php``
  with ``senders[].SenderID``/``Status: Activated``);
- [U] everything about delivery reports: no DLR push, payload or status word is documented in
  any source found; ``getMessages.php`` (``reqBulkId``, ``pageNumber``, ``limit``) exists [T]
  but its answer was not found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
    WebhookAck,
    WebhookEvent,
    WebhookPayloadError,
    WebhookRequest,
)

slug: Final = "msegat"
default_base_url: Final = "https://www.msegat.com"
"""The host; every path below starts with ``/gw/``, so an operator's override names a host too
(``TIDINGS_PROVIDER_URL_MSEGAT=http://127.0.0.1:9001``)."""

SEND_PATH: Final = "/gw/sendsms.php"
CREDITS_PATH: Final = "/gw/Credits.php"
SENDERS_PATH: Final = "/gw/senders.php"
ENCODING: Final = "UTF8"

SUCCESS_CODES: Final = frozenset({"1", "M0000"})

ERRORS: Final[Mapping[str, str]] = {
    "M0001": "Variables missing",
    "1010": "Variables missing",
    "M0002": "Invalid login info",
    "1020": "Invalid login info",
    "M0022": "Exceed number of senders allowed",
    "M0023": "Sender Name is active or under activation or refused",
    "M0024": "Sender Name should be in English or number",
    "M0025": "Invalid Sender Name Length",
    "M0026": "Sender Name is already activated or not found",
    "M0027": "Activation Code is not Correct",
    "M0029": "Invalid Sender Name - Sender Name should contain only letters, numbers and the "
             "maximum length should be 11 characters",
    "M0030": "Sender Name should ended with AD",
    "M0031": "Maximum allowed size of uploaded file is 5 MB",
    "M0032": "Only pdf,png,jpg and jpeg files are allowed!",
    "M0033": "Sender Type should be normal or whitelist only",
    "M0034": "Please Use POST Method",
    "M0036": "There is no any sender",
    "1050": "MSG body is empty",
    "1060": "Balance is not enough",
    "1061": "MSG duplicated",
    "1064": "Free OTP , Invalid MSG content you should use \"Pin Code is: xxxx\" or "
            "\"Verification Code: xxxx\" or \"رمز التحقق: 1234\" , or upgrade your account and "
            "activate your sender to send any content",
    "1110": "Sender name is missing or incorrect",
    "1120": "Mobile numbers is not correct",
    "1140": "MSG length is too long",
}
"""Msegat's documented error codes and their texts. Every one is a ``Reject``: none means
"busy"."""

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "queued": MessageState.SENT,
    "submitted": MessageState.SENT,
    "sent": MessageState.SENT,
    "delivered": MessageState.DELIVERED,
    "failed": MessageState.FAILED,
    "undelivered": MessageState.FAILED,
    "undeliverable": MessageState.FAILED,
    "rejected": MessageState.FAILED,
    "expired": MessageState.FAILED,
}
"""Relayed report words, lower-cased [U]; any other word is ``UnknownStatus``."""

BALANCE_ERRORS: Final = frozenset({"M0001", "1010", "M0002", "1020"})
"""The codes ``Credits.php`` answers instead of a balance (missing fields, bad login): a bare
``1020`` is an error, while other numbers are balances."""

ACTIVE_SENDER_STATES: Final = frozenset({"active", "activated", "approved"})

webhook_ack: Final = WebhookAck()

_E164: Final = re.compile(r"\+([1-9][0-9]{6,14})")
_CODE: Final = re.compile(r"[A-Za-z]?[0-9]{1,6}")
_ID_FIELDS: Final = ("bulkid", "reqbulkid", "id", "messageid")
_DETAIL_FIELDS: Final = ("description", "reason", "message")
_SENDER_FIELDS: Final = ("sender", "sendername", "senderid", "name")


class Credentials(BaseModel):
    """The Msegat account's user name and API key, as the dashboard shows them."""

    model_config = ConfigDict(extra="forbid")

    user_name: str = Field(pattern=r"^[A-Za-z0-9._@+-]{1,100}$",
                           description="Msegat userName (the account user name)")
    api_key: str = Field(pattern=r"^[A-Za-z0-9]{16,128}$",
                         description="Msegat apiKey: 16 to 128 letters and digits")


class Config(BaseModel):
    """``sender_id``: the approved sender name used when a message names none (Msegat has no
    default). ``request_bulk_id``: send ``reqBulkId`` so the answer carries an id reports can be
    matched to. ``filter_duplicates``: send ``reqFilter`` (Msegat drops repeated numbers)."""

    model_config = ConfigDict(extra="forbid")

    sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._&-]{0,15}$")
    request_bulk_id: bool = True
    filter_duplicates: bool = True


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message through ``sendsms.php``; see the module docstring for the body and the
    answer-to-outcome table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")`` when the
    stored account no longer validates, ``Reject("invalid_number")`` for a ``to`` that is not
    E.164, ``Reject("sender_id_required")`` when neither the message nor the config names a
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
        return Reject("sender_id_required", "Msegat needs an approved sender name (userSender)")
    body = {
        "userName": credentials.user_name,
        "apiKey": credentials.api_key,
        "numbers": number.group(1),
        "userSender": sender,
        "msg": message.text,
        "msgEncoding": ENCODING,
        "reqBulkId": _flag(config.request_bulk_id),
        "reqFilter": _flag(config.filter_duplicates),
    }
    url = account.base_url.rstrip("/") + SEND_PATH
    try:
        response = await http.post(url, json=body, headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if response.is_client_error and response.status_code not in (408, 429):
        error = _error(response)
        if error is not None:
            return Reject(error[0], clean_reason(error[1], secrets))
    return outcome_from_response(response, now=now, accepted=_accepted, secrets=secrets)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _accepted(response: httpx.Response) -> SendOutcome:
    body = _envelope(response)
    code = _code(body.get("code")) if body is not None else None
    if body is None or code is None:
        return Reject("malformed_response",
                      f"HTTP {response.status_code} without a Msegat code: {response.text}")
    head, _, bulk_id = code.partition("-")
    if head in SUCCESS_CODES:
        bulk_id = bulk_id.strip() or _text(body.get("id")) or _text(body.get("bulkId"))
        return Accepted((bulk_id,) if bulk_id else (), raw=body)
    return Reject(code, _message(body, code))


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    """The answer as ``{"code", "message", ...}``: the JSON object, or a bare code as text."""
    body = json_or_none(response)
    if isinstance(body, dict):
        return body
    if isinstance(body, int | str) and not isinstance(body, bool):
        return {"code": str(body)}
    text = response.text.strip()
    if _CODE.fullmatch(text):
        return {"code": text}
    return None


def _error(response: httpx.Response) -> tuple[str, str] | None:
    """``(code, text)`` of an answer carrying a Msegat code that is not a success, else
    ``None``."""
    body = _envelope(response)
    code = _code(body.get("code")) if body is not None else None
    if body is None or code is None or code.partition("-")[0] in SUCCESS_CODES:
        return None
    return code, _message(body, code)


def _code(value: object) -> str | None:
    text = _text(value)
    return text or None


def _message(body: Mapping[str, Any], code: str) -> str:
    text = _text(body.get("message"))
    return text or ERRORS.get(code, "unknown Msegat code")


def _text(value: object) -> str:
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
    """One event per relayed report in body order (see the module docstring for the accepted
    bodies and field names [U]).

    Raises ``WebhookPayloadError`` for a body that cannot be read or carries no report, or a
    report without an id or a status word.
    """
    return [_event({str(name).lower(): value for name, value in report.items()})
            for report in webhook_reports(request)]


def _event(report: Mapping[str, Any]) -> WebhookEvent:
    provider_id = next((_text(report.get(name)) for name in _ID_FIELDS
                        if _text(report.get(name))), "")
    if not provider_id:
        raise WebhookPayloadError("the report has no bulkId")
    word = _text(report.get("status")) or _text(report.get("dlr"))
    if not word:
        raise WebhookPayloadError("the report has no status")
    state = STATUS_MAP.get(word.lower())
    if state is None:
        return UnknownStatus(provider_message_id=provider_id, provider_status=word)
    error_code = error_detail = None
    if state is MessageState.FAILED:
        error_code = _text(report.get("errorcode")) or None
        error_detail = next((_text(report.get(name)) for name in _DETAIL_FIELDS
                             if _text(report.get(name))), None)
    return StatusUpdate(provider_message_id=provider_id, state=state, provider_status=word,
                        error_code=error_code, error_detail=error_detail)


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """The account's credit as ``Credits.php`` states it, verbatim, without a currency.

    Raises ``ProviderError``: ``Reject("invalid_credentials")`` for a stored account that no
    longer validates, the transport or HTTP failure, ``Reject(code, text)`` for a Msegat error
    code, ``Reject("malformed_response")`` for an answer that is not a number.
    """
    secrets = account.secrets()
    credentials = _credentials(account, secrets)
    form = {"userName": credentials.user_name, "apiKey": credentials.api_key,
            "msgEncoding": ENCODING}
    response = await _query(http, account.base_url.rstrip("/") + CREDITS_PATH, secrets,
                            data=form)
    text = response.text.strip()
    if re.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?", text) and text not in BALANCE_ERRORS:
        return Balance(amount=text, currency=None)
    error = _error(response)
    if error is not None:
        raise ProviderError(Reject(error[0], clean_reason(error[1], secrets)))
    raise ProviderError(Reject("malformed_response",
                               clean_reason(f"the credit answer is not a number: {text}", secrets)))


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str]:
    """The account's usable sender names from ``senders.php``, in the provider's order, each
    once (see the module docstring for the shapes read [U]).

    Raises ``ProviderError`` like ``balance``, with ``Reject(code, text)`` for an error code
    in the envelope and ``Reject("malformed_response")`` for an answer with no sender list.
    """
    secrets = account.secrets()
    credentials = _credentials(account, secrets)
    body = {"userName": credentials.user_name, "apiKey": credentials.api_key,
            "msgEncoding": ENCODING}
    response = await _query(http, account.base_url.rstrip("/") + SENDERS_PATH, secrets,
                            json=body)
    rows = _sender_rows(json_or_none(response))
    if rows is None:
        error = _error(response)
        if error is not None:
            raise ProviderError(Reject(error[0], clean_reason(error[1], secrets)))
        raise ProviderError(Reject("malformed_response", clean_reason(
            f"the senders answer has no sender list: {response.text.strip()}", secrets)))
    names: list[str] = []
    for row in rows:
        fields = {str(key).lower(): value for key, value in row.items()}
        name = next((_text(fields.get(key)) for key in _SENDER_FIELDS
                     if _text(fields.get(key))), "")
        status = _text(fields.get("status")).lower()
        if name and (not status or status in ACTIVE_SENDER_STATES) and name not in names:
            names.append(name)
    return names


def _sender_rows(body: object) -> list[Mapping[str, Any]] | None:
    if isinstance(body, dict):
        code = _code(body.get("code"))
        if code is not None and code.partition("-")[0] not in SUCCESS_CODES:
            return None
        body = next((body[key] for key in ("data", "senders") if key in body), None)
    if isinstance(body, list) and all(isinstance(row, dict) for row in body):
        return body
    return None


def _credentials(account: AccountContext, secrets: Iterable[str]) -> Credentials:
    try:
        return Credentials.model_validate(dict(account.credentials))
    except pydantic.ValidationError as exc:
        raise ProviderError(Reject("invalid_credentials", validation_summary(exc))) from None


async def _query(http: httpx.AsyncClient, url: str, secrets: Iterable[str],
                 **body: Any) -> httpx.Response:
    """POST a query and return its 2xx answer; raises ``ProviderError`` for a transport error
    or a non-2xx answer (a 4xx carrying a Msegat code keeps that code)."""
    secrets = tuple(secrets)
    try:
        response = await http.post(url, headers={"accept": "application/json"}, **body)
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    if response.is_client_error and response.status_code not in (408, 429):
        error = _error(response)
        if error is not None:
            raise ProviderError(Reject(error[0], clean_reason(error[1], secrets)))
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    return response


# --- helpers -------------------------------------------------------------------------------------
