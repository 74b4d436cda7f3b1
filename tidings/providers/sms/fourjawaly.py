"""4jawaly (Saudi Arabia), the SMS gateway REST API v1 at ``https://api-sms.4jawaly.com/api/v1``.

Docs: 4jawaly publishes no reference site in the search corpora; its official repositories are
the reference: the OpenAPI document ``4jawalycom/4jawaly.com_bulk_sms`` ``docs/jawaly-api.yaml``,
the examples of the same repository (``golang/send_sms.go``, ``Get_balance.php``, ``Get
SenderName``), the SDKs ``4jawalycom/sms4jawaly-py`` (``src/sms4jawaly_py/sms_gateway.py``,
``models.py``), ``4jawalycom/sms-gateway-4jawaly`` (``src/SMSGateway.php``) and
``4jawalycom/4jawaly-ai-skills`` (``.claude/skills/sms-4jawaly/SKILL.md``).

**Auth.** HTTP Basic, ``Authorization: Basic base64(app_key:app_secret)``: the "API Token" pair
of the 4jawaly panel (Personal information > API Token). No other credential.

**Send.** ``POST /api/v1/account/area/sms/send`` with JSON::

    {"messages": [{"text": "...", "numbers": ["966501234567"], "sender": "ACME"}]}

One message object per call, one number: the number in international form without ``+``; the
sender is the message's sender id, else the config's ``default_sender`` (4jawaly needs an
approved sender name on every message, so without one no request is made). With the config's
``per_message_webhook`` on, the message object also carries ``"webhook": <the message's
status_callback_url>`` [U, see below]. 4jawaly decides the encoding itself (``GSM_7BIT`` in its
answer); there is no encoding field and no idempotency key. Answers::

    answer                                         outcome
    200 {"job_id", "messages": [{"inserted_numbers", Accepted((job_id, message.id), raw=body)
      "message": {"id", "job_id", ...}, ...}],
      "code": 200, "message": "..."}
    200 whose messages[0] has "err_text"           Reject("err_text", err_text)
    200 listing the number in messages[0]          Reject("error_numbers", "<number>: <error>")
      "error_numbers" [{number, country, error}]
    200 listing it in "no_package" (no active      Reject("no_package", ...)
      package covers the destination)
    200 with "inserted_numbers": 0 otherwise       Reject("not_inserted", body)
    200 without a job_id                           Reject(body "code", "message") when it has
                                                   them, else Reject("malformed_response"): it
                                                   may have been taken, so no retry here
    400 {"code": 400, "message", "not_senders"}    Reject("400", message + the refused senders)
    422 {"messages": [{"text": ["..."]}]} or a     Reject("http_422", the validation messages)
      Laravel {"message", "errors"} body
    other 4xx with {"code", "message"}             Reject(code, message); no such body:
                                                   Reject("http_<status>", body)
    408, 429 (Retry-After honoured), 5xx,          Retry (tidings.providers._http)
      timeout, connection error

The official examples treat every status but 200, 400 and 422 as "blocked by Cloudflare"; a
Cloudflare 403 page is therefore a ``Reject("http_403")`` like any other 4xx.

**Webhook authentication.** 4jawaly signs nothing. The report URL is the account's DLR URL,
which carries ``?token=<webhook token>``; ``verify_webhook`` compares that parameter with the
account's token in constant time.

**Delivery reports** (third-party evidence only). A JSON POST::

    {"sms_message": {"id", "job_id", "text", "sender_name", "encoding", "created_at", ...},
     "numbers": [{"msg_id": "<job id>", "number": "966501234567", "country_iso": "SA",
                  "status": 3, "error_code_string": null}]}

one ``numbers`` entry per recipient, each becoming one event keyed by ``msg_id`` (the send's
``job_id``; ``sms_message.job_id`` when an entry lacks it). ``STATUS_MAP`` knows only ``3``
(delivered); every other status (``1`` appears in the same sample) is ``UnknownStatus``, with
nothing guessed, until 4jawaly documents its codes. No inbound-SMS webhook is documented.

**Balance.** ``GET /api/v1/account/area/me/packages?is_active=1&order_by=id&order_by_type=desc
&page=1&page_size=10&return_collection=1`` answers ``{"code": 200, "message", "total_balance":
985, "items": ...}``; ``total_balance`` (SMS points, so no currency) is kept as written.
**Sender names.** ``GET /api/v1/account/area/senders?page_size=100&page=N&status=1
&return_collection=1`` (``status=1``: active names only) answers ``{"code", "message", "items"}``
where ``items`` is paginated (``{"current_page", "data": [{"sender_name", ...}], "last_page"}``)
or a plain list; pages are followed up to ``MAX_SENDER_PAGES``.

**Verified** [D] = 4jawaly's own repositories and published SDKs, [T] = third-party code,
[U] = assumed:

- [D] the base URL, Basic auth of ``app_key:app_secret``, the send path and body (several
  message objects allowed, numbers international without ``+``), ``job_id`` and
  ``messages[0].err_text`` in a 200 answer, ``message`` in a 400 answer, 422 for an empty text
  (OpenAPI document, the official Go/PHP/Node examples, ``sms-gateway-4jawaly``,
  ``SKILL.md``);
- [D] ``inserted_numbers``, ``error_numbers`` ``{number, country, error}``, ``no_package``,
  ``has_more_iso_code``, ``code``, ``message`` in the send answer, and ``total_balance`` and
  ``items[].sender_name`` (``sms4jawaly-py`` ``models.py``, the OpenAPI document);
- [T] the full success body (``messages[0].message`` with ``id``, ``job_id``, ``sender_name``,
  ``encoding``, ``webhook``, ``send_at``), the 400 ``{"code": 400, "message": "اسم المرسل غير
  موجود او لا تملك صلاحية", "not_senders": [...]}``, the 422 ``{"messages": [{"text": ["حقل
  messages.0.text مطلوب."]}]}`` and the paginated packages answer (recorded answers in
  ``ibrahem-kamal/omni-messaging-jawaly-sms-driver`` ``tests/Unit/Mock/Responses`` and in a
  Laravel project's comment of a live answer, Jan 2025); [D] the paginated senders answer
  (``items.data``, ``items.last_page``) read by 4jawaly's own Flutter SDK (pub.dev
  ``sms_4jawaly``) [T] and by third-party clients;
- [T] the delivery-report body and ``3`` meaning delivered (the omni-messaging driver's
  ``JawalyWebhookParser`` and its ``WebhookPayload.json``); [U] the meaning of every other
  status code, how 4jawaly is told the report URL (its panel, or, since the send answer echoes
  a ``webhook`` field, a per-message ``webhook`` value: sent only when ``per_message_webhook``
  is on), and whether it retries reports;
- [U] 401's body (the Laravel ``{"message": "Unauthenticated."}`` is assumed; any body
  maps to a Reject), and the newer ``me/balances`` and ``me/senders`` paths the AI-skills
  repository names, without an answer shape (not used: ``me/packages`` and ``senders`` are in
  the OpenAPI document and every SDK).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
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

slug: Final = "fourjawaly"
default_base_url: Final = "https://api-sms.4jawaly.com"

SEND_PATH: Final = "/api/v1/account/area/sms/send"
PACKAGES_PATH: Final = "/api/v1/account/area/me/packages"
SENDERS_PATH: Final = "/api/v1/account/area/senders"
PACKAGES_QUERY: Final[Mapping[str, str]] = {
    "is_active": "1", "order_by": "id", "order_by_type": "desc", "page": "1",
    "page_size": "10", "return_collection": "1",
}
"""The query of the balance call, as 4jawaly's SDKs send it (active packages only)."""
SENDERS_PAGE_SIZE: Final = 100
MAX_SENDER_PAGES: Final = 20
"""The most pages of sender names read; an account with more lists the first 2,000."""

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "3": MessageState.DELIVERED,  # [T] the only code with a stated meaning
}
"""4jawaly's per-number report ``status`` codes; any other code is ``UnknownStatus``."""

webhook_ack: Final = WebhookAck()

_E164: Final = re.compile(r"\+([1-9][0-9]{6,14})")
_TOKEN_TEXT: Final = r"^[\x21-\x7e]{6,256}$"


class Credentials(BaseModel):
    """The API Token pair of the 4jawaly panel: ``app_key`` (Basic user, so no ``:``) and
    ``app_secret``."""

    model_config = ConfigDict(extra="forbid")

    app_key: str = Field(pattern=r"^[\x21-\x39\x3b-\x7e]{6,256}$",
                         description="4jawaly API key: 6 to 256 printable characters, no ':'")
    app_secret: str = Field(pattern=_TOKEN_TEXT,
                            description="4jawaly API secret: 6 to 256 printable characters")


class Config(BaseModel):
    """``default_sender``: the approved sender name used when a message names none.
    ``per_message_webhook``: put the message's report URL in each message object (unverified;
    off by default, when the report URL is set in the 4jawaly panel instead)."""

    model_config = ConfigDict(extra="forbid")

    default_sender: str | None = Field(default=None, min_length=1, max_length=16,
                                       pattern=r"^[^\x00-\x1f\x7f]+$")
    per_message_webhook: bool = False


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message to one number; see the module docstring for the answer-to-outcome
    table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")`` when the
    stored account no longer validates, ``Reject("invalid_number")`` for a ``to`` that is not
    E.164, ``Reject("sender_required")`` when neither the message nor the config names a
    sender.
    """
    secrets = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
        config = Config.model_validate(dict(account.config))
    except pydantic.ValidationError as exc:
        which = "credentials" if exc.title == Credentials.__name__ else "config"
        return Reject(f"invalid_{which}", validation_summary(exc))
    secrets = (*secrets, _token(credentials))
    number = _E164.fullmatch(message.to)
    if number is None:
        return Reject("invalid_number", "the recipient must be an E.164 number")
    digits = number.group(1)
    sender = message.sender_id or config.default_sender
    if not sender:
        return Reject("sender_required",
                      "4jawaly needs an approved sender name: the message or the config's "
                      "default_sender must name one")
    entry: dict[str, Any] = {"text": message.text, "numbers": [digits], "sender": sender}
    if config.per_message_webhook and message.status_callback_url:
        entry["webhook"] = message.status_callback_url
    url = account.base_url.rstrip("/") + SEND_PATH
    try:
        response = await http.post(url, json={"messages": [entry]}, headers=_headers(credentials))
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if response.is_client_error and response.status_code not in (408, 429):
        error = _error(response)
        if error is not None:
            return Reject(error[0], clean_reason(error[1], secrets))
    return outcome_from_response(
        response, now=now, secrets=secrets,
        accepted=lambda answer: _accepted(answer, digits))


def _accepted(response: httpx.Response, number: str) -> SendOutcome:
    body = json_or_none(response)
    if not isinstance(body, dict):
        return Reject("malformed_response",
                      f"HTTP {response.status_code} without a job id: {response.text}")
    messages = body.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    first = first if isinstance(first, dict) else {}
    err_text = first.get("err_text")
    if _is_text(err_text):
        return Reject("err_text", str(err_text).strip())
    failed = _number_errors(first.get("error_numbers"))
    inserted = first.get("inserted_numbers")
    nothing_inserted = isinstance(inserted, int) and not isinstance(inserted, bool) and (
        inserted == 0)
    if number in failed or (nothing_inserted and failed):
        which = number if number in failed else next(iter(failed))
        return Reject("error_numbers", f"{which}: {failed[which]}")
    no_package = first.get("no_package")
    if isinstance(no_package, list) and no_package and (
            number in [str(item) for item in no_package] or nothing_inserted):
        return Reject("no_package", f"no active 4jawaly package covers {number}")
    job_id = body.get("job_id")
    if not _is_text(job_id):
        error = _error(response)
        if error is not None:
            return Reject(*error)
        return Reject("malformed_response",
                      f"HTTP {response.status_code} without a job id: {response.text}")
    if nothing_inserted:
        return Reject("not_inserted", f"4jawaly inserted no number: {response.text}")
    ids = [str(job_id).strip()]
    record = first.get("message")
    record_id = record.get("id") if isinstance(record, dict) else None
    if _is_text(record_id) and str(record_id).strip() not in ids:
        ids.append(str(record_id).strip())
    return Accepted(tuple(ids), raw=body)


def _number_errors(value: object) -> dict[str, str]:
    """``{number: error}`` of a send answer's ``error_numbers``."""
    errors: dict[str, str] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and _is_text(item.get("number")):
                text = item.get("error")
                errors[str(item["number"]).strip()] = (
                    str(text).strip() if _is_text(text) else "refused")
    return errors


def _error(response: httpx.Response, *, need_code: bool = False) -> tuple[str, str] | None:
    """``(code, text)`` of a 4jawaly error body: ``{"code", "message", "not_senders"?}``, a
    422 ``{"messages": [{"<field>": ["..."]}]}`` or a Laravel ``{"message", "errors"}``;
    ``None`` for any other body, for a ``code`` of 200, and (``need_code``) for a body without
    a ``code``. The code is the body's, else ``http_<status>``."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    have_code = _is_text(code)
    if (have_code and str(code).strip() == "200") or (need_code and not have_code):
        return None
    parts: list[str] = []
    if _is_text(body.get("message")):
        parts.append(str(body["message"]).strip())
    parts.extend(_validation_texts(body.get("errors")))
    messages = body.get("messages")
    if isinstance(messages, list):
        for item in messages:
            parts.extend(_validation_texts(item))
    not_senders = body.get("not_senders")
    if isinstance(not_senders, list) and not_senders:
        parts.append("not_senders: " + ", ".join(str(name) for name in not_senders))
    if not parts:
        return None
    return (str(code).strip() if have_code else f"http_{response.status_code}"), "; ".join(parts)


def _validation_texts(value: object) -> list[str]:
    """The texts of a ``{"field": ["text", ...]}`` validation object, in order."""
    texts: list[str] = []
    if isinstance(value, dict):
        for field_texts in value.values():
            items = field_texts if isinstance(field_texts, list) else [field_texts]
            texts.extend(str(item).strip() for item in items if _is_text(item))
    return texts


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """One event per ``numbers`` entry, in body order (a flat report with ``msg_id`` and
    ``status`` counts as one entry).

    Raises ``WebhookPayloadError`` for a body that cannot be read, a report with neither
    ``numbers`` nor ``msg_id``, or an entry without an id or a status.
    """
    events: list[WebhookEvent] = []
    for report in webhook_reports(request):
        sms_message = report.get("sms_message")
        fallback_id = sms_message.get("job_id") if isinstance(sms_message, dict) else None
        numbers = report.get("numbers")
        if isinstance(numbers, list):
            entries: Sequence[object] = numbers
        elif "msg_id" in report:
            entries = [report]
        else:
            raise WebhookPayloadError("the report has no numbers")
        for entry in entries:
            if not isinstance(entry, dict):
                raise WebhookPayloadError("a numbers entry is not an object")
            events.append(_event(entry, fallback_id))
    return events


def _event(entry: Mapping[str, Any], fallback_id: object) -> WebhookEvent:
    msg_id = entry.get("msg_id") if _is_text(entry.get("msg_id")) else fallback_id
    if not _is_text(msg_id):
        raise WebhookPayloadError("msg_id is missing")
    provider_id = str(msg_id).strip()
    status = entry.get("status")
    if not _is_text(status):
        raise WebhookPayloadError("status is missing")
    word = str(status).strip()
    state = STATUS_MAP.get(word)
    if state is None:
        return UnknownStatus(provider_message_id=provider_id, provider_status=word)
    return StatusUpdate(provider_message_id=provider_id, state=state, provider_status=word)


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance:
    """The active packages' ``total_balance`` (SMS points) as written, without a currency.
    Raises ``ProviderError`` for an invalid stored account, a transport error, an error answer
    (with 4jawaly's code) or an answer without ``total_balance``."""
    body = await _get_json(account, http, PACKAGES_PATH, PACKAGES_QUERY)
    total = body.get("total_balance")
    if isinstance(total, bool) or not isinstance(total, int | str) or str(total).strip() == "":
        raise ProviderError(Reject("malformed_response", "the packages answer has no "
                                                         "total_balance"))
    return Balance(amount=str(total).strip(), currency=None)


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str]:
    """The account's active sender names, every page up to ``MAX_SENDER_PAGES``, in 4jawaly's
    order without repeats. Raises ``ProviderError`` as ``balance`` does, or for an answer
    without ``items``."""
    names: list[str] = []
    page = 1
    while page <= MAX_SENDER_PAGES:
        query = {"page_size": str(SENDERS_PAGE_SIZE), "page": str(page), "status": "1",
                 "return_collection": "1"}
        body = await _get_json(account, http, SENDERS_PATH, query)
        items = body.get("items")
        entries = items.get("data") if isinstance(items, dict) else items
        if not isinstance(entries, list):
            raise ProviderError(Reject("malformed_response", "the senders answer has no items"))
        for entry in entries:
            name = entry.get("sender_name") if isinstance(entry, dict) else None
            if _is_text(name) and str(name).strip() not in names:
                names.append(str(name).strip())
        last = items.get("last_page") if isinstance(items, dict) else None
        if isinstance(last, bool) or not isinstance(last, int) or page >= last:
            break
        page += 1
    return names


async def _get_json(account: AccountContext, http: httpx.AsyncClient, path: str,
                    query: Mapping[str, str]) -> dict[str, Any]:
    """GET ``path`` with ``query`` and answer its JSON object, every number kept as the text it
    was written as; raises ``ProviderError``."""
    secrets: tuple[str, ...] = account.secrets()
    try:
        credentials = Credentials.model_validate(dict(account.credentials))
    except pydantic.ValidationError as exc:
        raise ProviderError(Reject("invalid_credentials", validation_summary(exc))) from None
    secrets = (*secrets, _token(credentials))
    url = account.base_url.rstrip("/") + path
    try:
        response = await http.get(url, params=dict(query), headers=_headers(credentials))
    except httpx.TransportError as exc:
        raise ProviderError(outcome_from_transport_error(exc, secrets)) from None
    if response.is_success or (response.is_client_error
                               and response.status_code not in (408, 429)):
        error = _error(response, need_code=response.is_success)
        if error is not None:
            raise ProviderError(Reject(error[0], clean_reason(error[1], secrets)))
    failure = query_failure(response, secrets)
    if failure is not None:
        raise ProviderError(failure)
    try:
        body = json.loads(response.text, parse_float=str, parse_int=str)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(Reject("malformed_response",
                                   clean_reason(f"not a JSON object: {response.text}", secrets)))
    if isinstance(body.get("items"), dict):
        last = body["items"].get("last_page")
        if isinstance(last, str) and last.isdigit():
            body["items"]["last_page"] = int(last)
    return body


# --- helpers -------------------------------------------------------------------------------------


def _token(credentials: Credentials) -> str:
    """The Basic token, ``base64(app_key:app_secret)``: a secret in its own right."""
    pair = f"{credentials.app_key}:{credentials.app_secret}".encode()
    return base64.b64encode(pair).decode("ascii")


def _headers(credentials: Credentials) -> dict[str, str]:
    return {"authorization": f"Basic {_token(credentials)}", "accept": "application/json"}


def _is_text(value: object) -> bool:
    """A non-empty string or an integer (4jawaly writes ids and codes either way)."""
    return (isinstance(value, int | str) and not isinstance(value, bool)
            and str(value).strip() != "")
