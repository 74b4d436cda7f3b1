"""CEQUENS (Egypt, MENA), the CEQUENS Communication APIs, SMS v1.

Docs: https://developer.cequens.com/reference (signing in),
https://developer.cequens.com/reference/sending-sms (send and its error codes),
https://developer.cequens.com/reference/dlr-webhook-1 (delivery reports),
https://support.cequens.com/support/solutions/articles/44002783219-api-integration-guide (API
tokens from the dashboard).

**Auth.** Every request carries ``Authorization: Bearer <token>``. CEQUENS documents two ways to
get the token, and both are supported (``Credentials``):

- ``api_token``: a token created in the dashboard (Developers > API Keys; it may be set to never
  expire), used as it is. One request per send: the recommended mode.
- ``user_name`` + ``api_key``: the Sign-In API, ``POST /auth/v1/tokens/`` with JSON
  ``{"apiKey", "userName"}``, answers ``{"replyCode": 0, ..., "data": {"access_token": jwt}}``.
  A provider is stateless (one module serves every tenant and never caches per account), so
  **``send`` signs in before every message**: two requests per send. The JWT is redacted from
  every reason like a credential and never stored.

**Send.** ``POST /sms/v1/messages`` with JSON::

    {"senderName": "ACME", "messageType": "text", "messageText": "...",
     "recipients": "201001234567", "dlrUrl": "https://.../dlr/?token=...",
     "flashing": 1, "acknowledgement": 0}

``recipients`` is the number in international form without ``+`` (one per request; CEQUENS
takes a comma-separated list for bulk). ``messageType`` is ``unicode`` for a UCS-2 text, else
``text``. ``senderName`` is the message's sender, else the config's ``sender_name``; one of them
is required. ``dlrUrl`` is the message's ``status_callback_url`` (the account's DLR URL with its
token), else the account's DLR URL, unless ``per_message_dlr`` is off. ``flashing`` is sent
(``1``) only when the config asks for flash SMS, ``acknowledgement`` (``0``/``1``) only when set.

Answers are the envelope ``{"replyCode", "replyMessage", "requestId", "clientRequestId",
"requestTime", "data": {"SentSMSIDs": [{"SMSId": id}], "InvalidRecipients": ""}, "error":
{"status", "description", "internalErrors": [{"code", "details"}]}}``::

    answer                                      outcome
    2xx replyCode 0, data.SentSMSIDs[].SMSId    Accepted(SMSIds in order, raw=body)
    2xx replyCode 0 without ids, recipient in   Reject("invalid_recipient", InvalidRecipients)
      InvalidRecipients
    2xx replyCode 0, no ids otherwise           Accepted((), raw=body): it was taken
    replyCode != 0 (a 2xx or any 4xx but        Reject(code, message): code is the first
      408/429), e.g. -12 Invalid Sender Name,   internalErrors code, else replyCode; message is
      -17 Not Enough Credits                    replyMessage / error description / details
    2xx that is no envelope                     Reject("malformed_response"): it may have been
                                                taken, so it is not retried on this account
    other 4xx (401 bad or expired token, ...)   Reject("http_<status>", body)
    408, 429 (Retry-After), 5xx, timeout,       Retry (tidings.providers._http)
      connection error

CEQUENS documents no "busy" code, so no error body is retried. A sign-in that fails answers
the same way, with ``sign-in: `` before the reason; a 2xx sign-in without a token is
``Reject("malformed_token_response")``. No request is made for a ``to`` that is not E.164
(``Reject("invalid_number")``), without a sender (``Reject("sender_name_required")``), or for
an account that no longer validates (``Reject("invalid_credentials" | "invalid_config")``).

**Webhook authentication.** CEQUENS signs nothing. The ``dlrUrl`` sent with each message (or
the push-DLR URL set on the account) is the account's DLR URL with ``?token=<webhook token>``;
``verify_webhook`` compares that parameter with the account's token in constant time.

**Delivery reports.** One report per request, its fields in the query string (CEQUENS's page
lists them as query parameters) and/or a JSON or form body (a third-party description of the
same webhook says "in the request body"); body fields win. Names are read case-insensitively:
the CEQUENS message id (``messageId``, else ``smsId`` or ``id``), the status id (``statusId``,
else ``status``), the status text (``statusMessage``, else ``statusDescription`` or
``description``), plus client message id, sender, recipient, account id and submit date, which
are not needed. ``STATUS_MAP`` maps the numeric status id (and its documented word,
case-insensitively); any other is ``UnknownStatus``. The submit date is when the message was
submitted, not when the report happened, so ``occurred_at`` stays ``None``.

**Balance and sender names.** The current API (apis.cequens.com) documents neither; the legacy
``/cequens/api/v1/accounts/balance`` of the 2016 SDK lives on another host and version, so both
are ``Unsupported()``.

**Verified** [D] = CEQUENS documentation in the search corpora, [S] = CEQUENS's own SDK
(Cequens/JAVA-SDK on GitHub, the legacy API), [T] = third-party code or docs, [U] = assumed:

- [D] ``POST /sms/v1/messages`` with a bearer token, ``senderName``, ``messageType`` (``text``
  or ``unicode``), ``messageText``, ``recipients``, ``dlrUrl``, and the error codes -6, -8, -9,
  -12 to -17 and -41 with their texts; [T] the host ``https://apis.cequens.com`` (many
  clients: AhmedAliIbrahim/Cequens gem, Headless.Sms.Cequens, Framework.Sms.Cequens, PHP and
  Laravel gateways);
- [D] the Sign-In API (username + API key -> JWT access token, valid until the account's
  expiry) and dashboard API tokens used directly; [T] its path ``/auth/v1/tokens/``, body
  ``{"apiKey", "userName"}`` and answer ``data.access_token`` (Framework.Sms.Cequens, a PHP
  client's tests, a TypeScript client); [S] the body field names (``SignInReq``);
- [T] the success envelope ``{"replyCode": 0, "replyMessage": "Request handled successfully",
  "requestId", "clientRequestId": 0, "requestTime", "data": {"SentSMSIDs": [{"SMSId"}],
  "InvalidRecipients": ""}}`` (the cequens gem's README); [S] the same fields plus ``error``
  ``{status, description, internalErrors[{code, details}]}`` (``SendSMSRes``, ``Error``);
  [S] ``flashing`` and ``acknowledgement`` as 0/1 (``SendSMSReq``);
- [U] where the negative error codes appear (``replyCode`` or ``internalErrors[].code``: both
  are read) and the HTTP status they come with (2xx and 4xx are both handled);
- [D] the DLR status ids 1 Delivered and 2 UnDelivered, and that the report carries the client
  message id, CEQUENS message id, status id, sender, recipient, account id and submit date
  (developer.cequens.com, and network-global.readme.io adding a status message); [S] the other
  status ids (3 Sent, 4 Buffered, 5 Blocked, 16 SMSC Rejected, 17 In Progress, 1200 UNKNOWN;
  ``MessageDetails``); [U] the exact parameter names of the report (the pages show only their
  descriptions), its method, and that the report's message id is the send's ``SMSId``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qs

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.domain.states import MessageState
from tidings.providers._http import (
    TOKEN_PARAMETER,
    clean_reason,
    failure_from_response,
    json_or_none,
    outcome_from_response,
    outcome_from_transport_error,
    validation_summary,
    verify_url_token,
)
from tidings.providers.base import (
    Accepted,
    AccountContext,
    OutboundSms,
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
)

slug: Final = "cequens"
default_base_url: Final = "https://apis.cequens.com"

SEND_PATH: Final = "/sms/v1/messages"
TOKEN_PATH: Final = "/auth/v1/tokens/"

STATUS_MAP: Final[Mapping[str, MessageState]] = {
    "1": MessageState.DELIVERED,
    "2": MessageState.FAILED,      # UnDelivered
    "3": MessageState.SENT,
    "4": MessageState.SENT,        # Buffered
    "5": MessageState.FAILED,      # Blocked
    "16": MessageState.FAILED,     # SMSC Rejected
    "17": MessageState.SENT,       # In Progress
    "delivered": MessageState.DELIVERED,
    "undelivered": MessageState.FAILED,
    "sent": MessageState.SENT,
    "buffered": MessageState.SENT,
    "blocked": MessageState.FAILED,
    "smsc rejected": MessageState.FAILED,
    "in progress": MessageState.SENT,
}
"""CEQUENS status ids and their words (lower-cased); 1200 UNKNOWN and anything else is
``UnknownStatus``."""

webhook_ack: Final = WebhookAck()

_E164: Final = re.compile(r"\+([1-9][0-9]{6,14})")
_ID_FIELDS: Final = ("messageid", "smsid", "id")
_STATUS_FIELDS: Final = ("statusid", "status")
_TEXT_FIELDS: Final = ("statusmessage", "statusdescription", "description")


class Credentials(BaseModel):
    """Either a dashboard ``api_token`` (used as the bearer token), or the Sign-In API pair
    ``user_name`` + ``api_key`` (exchanged for a JWT before each send). Not both."""

    model_config = ConfigDict(extra="forbid")

    api_token: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._~+/=-]{16,4096}$",
                                  description="CEQUENS API token (bearer), no 'Bearer ' prefix")
    user_name: str | None = Field(default=None, pattern=r"^[^\s]{1,100}$",
                                  description="CEQUENS service user name, for the Sign-In API")
    api_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._~+/=-]{8,512}$",
                                description="CEQUENS API key, for the Sign-In API")

    @model_validator(mode="after")
    def _one_mode(self) -> Credentials:
        pair = (self.user_name is not None, self.api_key is not None)
        if self.api_token is not None:
            if any(pair):
                raise ValueError("give either api_token or user_name + api_key, not both")
        elif pair != (True, True):
            raise ValueError("give api_token, or both user_name and api_key")
        return self


class Config(BaseModel):
    """``sender_name``: the sender when the message has none. ``per_message_dlr``: send the
    account's DLR URL as ``dlrUrl`` with each message. ``flashing``: send flash SMS.
    ``acknowledgement``: CEQUENS's 0/1 acknowledgement flag, sent only when set."""

    model_config = ConfigDict(extra="forbid")

    sender_name: str | None = Field(default=None,
                                    pattern=r"^(?:[A-Za-z0-9 .&_-]{1,11}|\+?[0-9]{3,16})$")
    per_message_dlr: bool = True
    flashing: bool = False
    acknowledgement: bool | None = None


credentials_model = Credentials
config_model = Config


# --- send ----------------------------------------------------------------------------------------


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: datetime
) -> SendOutcome:
    """Send one message through ``/sms/v1/messages`` (signing in first in the user name + API
    key mode); see the module docstring for the body and the answer-to-outcome table.

    Answers without a request: ``Reject("invalid_credentials" | "invalid_config")``,
    ``Reject("invalid_number")`` and ``Reject("sender_name_required")``.
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
    sender = message.sender_id or config.sender_name
    if not sender:
        return Reject("sender_name_required",
                      "CEQUENS needs a senderName: the message's sender or the config's")
    body: dict[str, Any] = {
        "senderName": sender,
        "messageType": "unicode" if message.encoding == "UCS-2" else "text",
        "messageText": message.text,
        "recipients": number.group(1),
    }
    callback = message.status_callback_url or account.webhook_url_dlr
    if config.per_message_dlr and callback:
        body["dlrUrl"] = callback
    if config.flashing:
        body["flashing"] = 1
    if config.acknowledgement is not None:
        body["acknowledgement"] = 1 if config.acknowledgement else 0
    base = account.base_url.rstrip("/")
    if credentials.api_token is not None:
        token = credentials.api_token
    else:
        signed_in = await _sign_in(credentials, base, http, now=now, secrets=secrets)
        if not isinstance(signed_in, str):
            return signed_in
        token = signed_in
        secrets = (*secrets, token)
    headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
    try:
        response = await http.post(base + SEND_PATH, json=body, headers=headers)
    except httpx.TransportError as exc:
        return outcome_from_transport_error(exc, secrets)
    if response.is_client_error and response.status_code not in (408, 429):
        error = _envelope_error(response)
        if error is not None:
            return Reject(error[0], clean_reason(error[1], secrets))
    return outcome_from_response(response, now=now, accepted=_accepted, secrets=secrets)


async def _sign_in(credentials: Credentials, base: str, http: httpx.AsyncClient, *,
                   now: datetime, secrets: tuple[str, ...]) -> str | Retry | Reject:
    """The JWT the Sign-In API gives for the user name and API key, or the send's outcome."""
    body = {"apiKey": credentials.api_key, "userName": credentials.user_name}
    try:
        response = await http.post(base + TOKEN_PATH, json=body,
                                   headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        lost = outcome_from_transport_error(exc, secrets)
        return type(lost)(lost.code, clean_reason(f"sign-in: {lost.reason}", secrets))
    envelope = json_or_none(response)
    token = None
    if isinstance(envelope, dict) and isinstance(envelope.get("data"), dict):
        data = envelope["data"]
        token = data.get("access_token") or data.get("accessToken")
    if response.is_success and isinstance(token, str) and token and _reply_code(envelope) in (
            None, "0"):
        return token
    if response.status_code not in (408, 429) and not response.is_server_error:
        error = _envelope_error(response)
        if error is not None:
            return Reject(error[0], clean_reason(f"sign-in: {error[1]}", secrets))
    failure = failure_from_response(response, now=now, secrets=secrets)
    if isinstance(failure, Retry):
        return Retry(failure.code, clean_reason(f"sign-in: {failure.reason}", secrets),
                     failure.retry_after)
    if isinstance(failure, Reject):
        return Reject(failure.code, clean_reason(f"sign-in: {failure.reason}", secrets))
    return Reject("malformed_token_response",
                  clean_reason(f"sign-in: HTTP {response.status_code} without an access token: "
                         f"{response.text}", secrets))


def _accepted(response: httpx.Response) -> SendOutcome:
    body = json_or_none(response)
    error = _envelope_error(response)
    if error is not None:
        return Reject(*error)
    if not isinstance(body, dict) or _reply_code(body) != "0":
        return Reject("malformed_response",
                      f"HTTP {response.status_code} without a CEQUENS envelope: {response.text}")
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    sent = data.get("SentSMSIDs")
    ids = tuple(str(item["SMSId"]) for item in sent if isinstance(item, dict)
                and isinstance(item.get("SMSId"), str | int) and item.get("SMSId") != "") \
        if isinstance(sent, list) else ()
    invalid = data.get("InvalidRecipients")
    if not ids and isinstance(invalid, str) and invalid.strip():
        return Reject("invalid_recipient", f"CEQUENS refused the recipient: {invalid.strip()}")
    return Accepted(ids, raw=body)


def _reply_code(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    code = body.get("replyCode")
    if isinstance(code, bool) or not isinstance(code, int | str) or code == "":
        return None
    return str(code).strip()


def _envelope_error(response: httpx.Response) -> tuple[str, str] | None:
    """``(code, message)`` of an envelope whose ``replyCode`` is not 0 or that carries an
    ``error`` object; ``None`` for a success envelope or any other body."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        return None
    reply = _reply_code(body)
    error = body.get("error")
    error = error if isinstance(error, dict) and error else None
    if reply in (None, "0") and error is None:
        return None
    code: str | None = None
    texts: list[str] = []
    if error is not None:
        internal = error.get("internalErrors")
        for item in internal if isinstance(internal, list) else ():
            if not isinstance(item, dict):
                continue
            value = item.get("code")
            if code is None and isinstance(value, int | str) and not isinstance(value, bool) \
                    and value != "":
                code = str(value)
            if isinstance(item.get("details"), str) and item["details"].strip():
                texts.append(item["details"].strip())
    if code is None:
        code = reply if reply not in (None, "0") else f"http_{response.status_code}"
    message = body.get("replyMessage")
    description = error.get("description") if error is not None else None
    parts = [value.strip() for value in (message, description) if isinstance(value, str)
             and value.strip()] + texts
    text = "; ".join(dict.fromkeys(parts)) or json.dumps(body)
    return code, text


# --- webhooks ------------------------------------------------------------------------------------


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """Compare the URL's ``token`` query parameter with the account's webhook token in constant
    time. Raises ``WebhookVerificationError`` when it is missing or differs, or when the
    account has no token."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """The one delivery report a push-DLR request carries (query string and/or body, names
    read case-insensitively; see the module docstring).

    Raises ``WebhookPayloadError`` for a body that cannot be read, or a report without a
    message id or a status id.
    """
    fields = {name.lower(): value for name, value in request.query.items()
              if name != TOKEN_PARAMETER}
    fields.update({name.lower(): value for name, value in _body_fields(request).items()})
    message_id = _first(fields, _ID_FIELDS)
    if message_id is None:
        raise WebhookPayloadError("the report has no CEQUENS message id")
    status = _first(fields, _STATUS_FIELDS)
    if status is None:
        raise WebhookPayloadError("the report has no status id")
    state = STATUS_MAP.get(status.lower())
    if state is None:
        return [UnknownStatus(provider_message_id=message_id, provider_status=status)]
    detail = _first(fields, _TEXT_FIELDS) if state is MessageState.FAILED else None
    return [StatusUpdate(provider_message_id=message_id, state=state, provider_status=status,
                         error_detail=detail)]


def _body_fields(request: WebhookRequest) -> Mapping[str, Any]:
    if not request.body.strip():
        return {}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadError("the body is not UTF-8") from exc
    if "json" in request.headers.get("content-type", "") or text.lstrip().startswith(("{", "[")):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise WebhookPayloadError("the JSON body cannot be parsed") from exc
        if not isinstance(body, dict):
            raise WebhookPayloadError("the JSON body is not an object")
        return body
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _first(fields: Mapping[str, Any], names: Iterable[str]) -> str | None:
    for name in names:
        value = fields.get(name)
        if isinstance(value, bool) or not isinstance(value, int | str):
            continue
        text = str(value).strip()
        if text:
            return text
    return None


# --- account queries -----------------------------------------------------------------------------


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """The current CEQUENS API documents no balance query: always ``Unsupported()``."""
    return Unsupported()


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> Unsupported:
    """The current CEQUENS API documents no sender-name listing: always ``Unsupported()``."""
    return Unsupported()


# --- helpers -------------------------------------------------------------------------------------
