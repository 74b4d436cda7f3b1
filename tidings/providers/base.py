"""The contract every provider implements: what goes in, what comes out, what is raised.

A provider is a slug's wire format and nothing else. It is handed everything it needs, so one
provider object serves every tenant at once and is never mutated per account:

- ``OutboundSms``: one message to one recipient, already validated, encoded and counted;
- ``AccountContext``: one channel account (base URL already resolved with the operator's
  ``TIDINGS_PROVIDER_URL_<SLUG>`` override, credentials already decrypted, webhook URLs);
- an ``httpx.AsyncClient`` owned by the app; a provider never makes its own.

It never touches the database, never reads the environment or the clock, and never imports
FastAPI. What it returns is plain data the pipeline and the services act on.

**Sending** answers one of a closed set of outcomes, never an exception for provider or network
trouble (the helpers in ``tidings.providers._http`` do the HTTP part of the mapping)::

    outcome                          pipeline (DESIGN.md, "The send pipeline", step 4)
    Accepted(provider_ids, raw)      sending -> sent; ids stored for matching reports
    Retry(code, reason, retry_after) sending -> queued, backoff with jitter, Retry-After a floor
    Reject(code, reason)             next account in the route (failover), else failed

``code`` and ``reason`` are the provider's own (``"21211"``, ``"Invalid 'To' Phone Number"``)
or, for HTTP and transport failures, ours (``"http_503"``, ``"timeout"``): kept verbatim so an
operator can look them up in the provider's documentation, and redacted so that no credential
reaches a log, an error or a stored event.

**Webhooks** go through two steps, always in this order: ``verify_webhook`` (raises
``WebhookVerificationError``: the route answers 401/403 and changes nothing), then
``parse_webhook`` (pure: bytes in, events out). Events are ``StatusUpdate`` (a delivery report,
already mapped onto a ``REPORTABLE`` state), ``InboundMessage`` and ``UnknownStatus`` (a report
whose status word the provider's ``STATUS_MAP`` does not know: recorded and answered 200
"ignored", never a 500 and never guessed).

A provider may be a module (functions at module level, constants for ``slug`` and the models)
or an object; both satisfy ``SmsProvider`` for mypy. The registry names them explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

import httpx
import pydantic

from tidings.domain.states import REPORTABLE, InvalidReport, MessageState

# --- send outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The provider took the message.

    ``provider_ids`` are the provider's ids for it, in the provider's order: usually one, several
    when the provider answers one per part; reports for any of them belong to this message. It
    may be empty when the provider accepted without giving an id (then no report can be matched);
    a provider must still answer ``Accepted`` then, because the message has left and sending it
    again would duplicate it. A list is stored as a tuple. ``raw`` is the provider's answer as
    parsed (for the event history); it must not hold credentials.
    """

    provider_ids: tuple[str, ...]
    raw: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider_ids", tuple(self.provider_ids))


@dataclass(frozen=True)
class Retry:
    """The message was not accepted this time; the same account may take it later.

    For timeouts, connection failures, 408, 429 and 5xx, and provider codes that mean "busy".
    ``retry_after`` is the provider's demanded wait in seconds (from ``Retry-After``), or
    ``None`` to leave the wait to the retry policy. Raises ``ValueError`` when ``retry_after`` is
    negative or not finite.
    """

    code: str
    reason: str
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.retry_after is not None and not (
            math.isfinite(self.retry_after) and self.retry_after >= 0
        ):
            raise ValueError("retry_after must be a finite number of seconds, zero or more")


@dataclass(frozen=True)
class Reject:
    """This account will not take this message: bad number, bad credentials, no balance, DLT
    template mismatch, any other 4xx. Sending it again through the same account would fail the
    same way, so the pipeline tries the next account in the route or fails the message."""

    code: str
    reason: str


SendOutcome = Accepted | Retry | Reject
"""Everything ``SmsProvider.send`` may answer."""


# --- what a provider is given --------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundSms:
    """One SMS to one recipient, as the pipeline hands it to a provider.

    ``to`` is E.164 (``+919876543210``). ``sender_id`` is the account's or the message's sender
    (alphanumeric header or number), ``None`` for the provider's default. ``encoding`` is a
    ``tidings.domain.segments.Encoding`` value (``"GSM-7"`` or ``"UCS-2"``) and ``segments`` the
    part count, both computed from ``text``. ``dlt_entity_id`` and ``dlt_template_id`` are the
    Indian DLT registration ids, ``None`` outside India. ``status_callback_url`` is the URL to
    give the provider for this message's delivery reports where it takes one per message,
    ``None`` when reports are configured per account or not wanted. ``idempotency_key`` is stable
    across attempts of this message; a provider that supports idempotency sends it.
    ``template_variables`` are the values that fill the DLT template's ``{#var#}`` placeholders
    in ``text``, in order (empty without a template): providers that send a stored template
    plus its variables (MSG91 flows, the Fast2SMS ``dlt`` route) send these instead of ``text``.
    """

    message_id: str
    to: str
    sender_id: str | None
    text: str
    encoding: str
    segments: int
    dlt_entity_id: str | None
    dlt_template_id: str | None
    status_callback_url: str | None
    idempotency_key: str
    template_variables: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountContext:
    """One channel account, as a provider sees it for one call.

    ``base_url`` is already resolved (the operator's override, else the provider's
    ``default_base_url``), without a trailing-slash guarantee. ``credentials`` are decrypted and
    live in memory only; a provider validates them with its ``credentials_model``. ``config`` is
    the account's provider configuration (validated by ``config_model`` when the account was
    created). ``webhook_url_dlr`` and ``webhook_url_inbound`` are the public URLs of this
    account's webhook routes; ``webhook_token`` is the account's webhook secret, for providers
    without a signature scheme of their own.

    Both mappings are copied into read-only views. ``credentials`` and ``webhook_token`` are left
    out of ``repr`` so that logging a context leaks nothing; ``secrets()`` lists them for
    ``redact``.
    """

    account_id: str
    base_url: str
    credentials: Mapping[str, str] = field(repr=False)
    config: Mapping[str, Any]
    webhook_url_dlr: str
    webhook_url_inbound: str
    webhook_token: str = field(repr=False)
    _secrets: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "credentials", MappingProxyType(dict(self.credentials)))
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        values = (*self.credentials.values(), self.webhook_token)
        object.__setattr__(self, "_secrets", tuple(value for value in values if value))

    def secrets(self) -> tuple[str, ...]:
        """Every non-empty credential value and the webhook token: what ``redact`` must hide."""
        return self._secrets


# --- webhooks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's webhook call, as the route received it.

    ``url`` is the full public URL the provider called (scheme, host, path and query as the
    provider saw them: signature schemes such as Twilio's sign it). ``headers`` keys are stored
    lower-cased (a mixed-case mapping is normalised on construction); ``body`` is the raw bytes,
    unparsed, because signatures cover the bytes.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes

    def __post_init__(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        object.__setattr__(self, "headers", MappingProxyType(headers))
        object.__setattr__(self, "query", MappingProxyType(dict(self.query)))


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery report for one message, mapped onto a neutral state.

    ``state`` must be in ``REPORTABLE`` (sent, failed, delivered, read): a carrier's "expired" or
    "rejected" is ``failed`` with its own word kept in ``provider_status``. A string is coerced
    to ``MessageState``. ``error_code`` and ``error_detail`` are the provider's, verbatim.
    ``occurred_at`` is when the provider says it happened, timezone-aware, ``None`` when it does
    not say. Raises ``InvalidReport`` (a ``ValueError``) for any other state, which means the
    provider's status map is wrong, and ``ValueError`` for a naive ``occurred_at``.
    """

    provider_message_id: str
    state: MessageState
    provider_status: str
    error_code: str | None = None
    error_detail: str | None = None
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.state not in REPORTABLE:
            raise InvalidReport(self.state)
        object.__setattr__(self, "state", MessageState(self.state))
        _require_aware(self.occurred_at, "occurred_at")


@dataclass(frozen=True)
class InboundMessage:
    """An SMS a recipient sent to one of the account's numbers.

    Numbers are as the provider gives them, E.164 where it can (normalising is the service's
    business). ``received_at`` is timezone-aware, ``None`` when the provider does not say; raises
    ``ValueError`` for a naive one.
    """

    provider_message_id: str
    from_number: str
    to_number: str
    text: str
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(self.received_at, "received_at")


@dataclass(frozen=True)
class InboundPart:
    """One part of a long inbound SMS that arrived on its own (an SMSC delivers each part of a
    concatenated message in a deliver_sm of its own): ``message`` carries this part's text.
    Parts are kept until all ``total`` are in, then stored as one message, their texts joined
    in ``sequence`` order (1 to ``total``). ``reference`` is the sender's concatenation
    reference, the same in every part of one message."""

    message: InboundMessage
    reference: int
    total: int
    sequence: int


@dataclass(frozen=True)
class UnknownStatus:
    """A report whose status word the provider's ``STATUS_MAP`` does not know.

    Not an error: the caller records it against the message (when ``provider_message_id``
    matches one) and answers 200 "ignored", so a provider adding a word never causes a 500 or a
    retry storm. The state is left as it was; nothing is guessed.
    """

    provider_message_id: str | None
    provider_status: str


@dataclass(frozen=True)
class WebhookAck:
    """The 200 answer a provider expects to a webhook it delivered: a media type and a body."""

    media_type: str = "application/json"
    body: bytes = b'{"status":"ok"}'


WebhookEvent = StatusUpdate | InboundMessage | InboundPart | UnknownStatus
"""Everything ``SmsProvider.parse_webhook`` may answer, in a list."""


class WebhookVerificationError(Exception):
    """The webhook is not provably from the provider for this account: missing or wrong
    signature or token. The route answers 401/403 and changes nothing. The message says what
    failed (``"X-Twilio-Signature does not match"``), never the expected value."""


class WebhookPayloadError(ValueError):
    """A verified webhook whose body is not the shape the provider documents (not JSON, a
    required field missing). The route answers 400 and changes nothing."""


# --- account queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Balance:
    """The account's balance as the provider states it: ``amount`` verbatim (``"12.3400"``;
    never a float, so nothing is rounded), ``currency`` its code, or ``None`` for credits."""

    amount: str
    currency: str | None


@dataclass(frozen=True)
class Unsupported:
    """The provider has no such query (no balance API, no sender-name listing)."""


class ProviderError(Exception):
    """An account query (``balance``, ``sender_names``) failed; ``failure`` says how, with the
    same codes, reasons and redaction as a send. Sends never raise this: they return it."""

    def __init__(self, failure: Retry | Reject) -> None:
        super().__init__(f"{failure.code}: {failure.reason}")
        self.failure = failure


# --- the contract --------------------------------------------------------------------------------


class SmsProvider(Protocol):
    """One SMS provider's wire format. Stateless: everything per account arrives as arguments.

    Every method must keep credentials out of what it returns and raises: reasons and messages
    pass through ``tidings.providers._http.redact(text, account.secrets())``.
    """

    @property
    def slug(self) -> str:
        """The registry key and URL slug, lower-case with hyphens (``"twilio"``, ``"msg91"``)."""
        ...

    @property
    def default_base_url(self) -> str:
        """The provider's production base URL; the operator may override it per slug."""
        ...

    @property
    def credentials_model(self) -> type[pydantic.BaseModel]:
        """Validates ``AccountContext.credentials`` (API keys, tokens) when an account is saved."""
        ...

    @property
    def config_model(self) -> type[pydantic.BaseModel]:
        """Validates ``AccountContext.config`` (route, DLT defaults, options) likewise."""
        ...

    @property
    def webhook_ack(self) -> WebhookAck:
        """What the webhook routes answer the provider after a webhook was handled (Twilio
        wants empty TwiML; most want any 200)."""
        ...

    async def send(
        self,
        message: OutboundSms,
        account: AccountContext,
        http: httpx.AsyncClient,
        *,
        now: datetime,
    ) -> SendOutcome:
        """Send one message through ``account`` and say what became of it.

        ``now`` (timezone-aware) is the pipeline's clock, for reading an HTTP-date
        ``Retry-After``; providers never read the clock themselves.

        Makes the provider's request(s) with ``http`` against ``account.base_url`` and maps the
        answer with ``outcome_from_response`` (``httpx.TransportError`` with
        ``outcome_from_transport_error``). Never raises for anything the provider or the network
        does: every answer, however malformed, is an outcome, and an exception out of ``send``
        is a bug in the provider module. After a timeout or a dropped connection the provider
        may have taken the message; the answer is still ``Retry`` (delivery is at-least-once),
        and ``message.idempotency_key`` is sent wherever the provider honours one. No side
        effects besides the HTTP requests.
        """
        ...

    def verify_webhook(self, request: WebhookRequest, account: AccountContext) -> None:
        """Prove that ``request`` comes from the provider for ``account``, or raise.

        Called on every webhook before ``parse_webhook``, which is never called on a request
        that failed here. Uses the provider's own scheme (a signature over URL and body, a basic
        auth pair, or ``account.webhook_token`` in the URL for providers without one), compared
        in constant time. Pure: no I/O, no clock. Raises ``WebhookVerificationError``.
        """
        ...

    def parse_webhook(self, request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
        """The events a verified webhook carries, in the order the body lists them.

        Pure: no I/O, no clock, no database, the same answer for the same request, so tests need
        nothing but bytes. Status words found in the provider's ``STATUS_MAP`` become
        ``StatusUpdate``; any other status word becomes ``UnknownStatus`` (never an exception,
        never a guess). A request that carries nothing to record (a ping, an event type we do not
        use) answers ``[]``. Raises ``WebhookPayloadError`` when the body is not the documented
        shape.
        """
        ...

    async def balance(
        self, account: AccountContext, http: httpx.AsyncClient
    ) -> Balance | Unsupported:
        """The account's balance, or ``Unsupported()`` when the provider has no balance API.

        Raises ``ProviderError`` when the provider or the network fails to answer.
        """
        ...

    async def sender_names(
        self, account: AccountContext, http: httpx.AsyncClient
    ) -> list[str] | Unsupported:
        """The sender ids (headers, numbers) the provider has approved for the account, or
        ``Unsupported()``. Raises ``ProviderError`` when the provider or the network fails."""
        ...


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
