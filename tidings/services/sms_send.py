"""Accepting SMS for sending: validate everything, then store the rows, then answer.

``resolve_send_plan`` looks up what a send needs once (the app, the DLT template); the pure
``build_message_row`` validates one recipient and text against it and returns the row to
insert, raising ``InvalidInput`` with the field at fault; ``store_messages`` writes rows (and
debits the wallet for priced apps) inside the caller's transaction. The API's single sends go
through ``tidings.pipeline.ingest`` so that many requests share one commit; every row is on disk
before its 201.

Test-mode callers (``jc_test_`` keys) are validated exactly like live ones and stored with
``mode='test'``: the dispatcher sends them through the simulator, and they are never charged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.db.models import ChannelAccount, Message, Tenant, Wallet, WalletEntry
from tidings.domain.dlt import dlt_problem, extract_variables, requires_dlt
from tidings.domain.ids import new_id
from tidings.domain.phone import to_e164
from tidings.domain.routing import Route
from tidings.domain.segments import count_segments
from tidings.domain.states import MessageState
from tidings.domain.ttl_cache import TtlCache
from tidings.errors import Conflict, InvalidInput, NotFound, PaymentRequired, TidingsError
from tidings.providers.registry import DLT_ONLY, PULL_PROVIDERS
from tidings.services.dlt_templates import find_by_dlt_id
from tidings.services.sms_apps import default_sms_app, get_sms_app

PRIORITY_MIN, PRIORITY_MAX = -128, 127
PRIORITY_BYPASS = 100
"""Messages at this priority or above skip the app's rate limit."""
MAX_CLIENT_REF = 128
MAX_TTL_SECONDS = 30 * 24 * 3600
OUTBOUND = "outbound"


@dataclass(frozen=True)
class SendRequest:
    """One send as a caller asked for it (plain values; the API validated only the types)."""

    phone: str
    text: str
    sms_app_id: str | None = None
    sender_id: str | None = None
    dlt_template_id: str | None = None
    priority: int = 0
    scheduled_at: datetime | None = None
    ttl: int | None = None
    valid_until: datetime | None = None
    client_ref: str | None = None
    callback_url: str | None = None
    failover_sms_app_ids: Sequence[str] = ()


@dataclass(frozen=True)
class Sender:
    """Who sends: the tenant, its default region for numbers without ``+``, and the key mode."""

    tenant_id: str
    default_region: str
    mode: str


@dataclass(frozen=True)
class SendPlan:
    """What every message of one send shares: the app, the DLT template body, if named, and
    the apps to fail over to, in order (``tidings.domain.routing``)."""

    app: ChannelAccount
    template_body: str | None
    failover_app_ids: tuple[str, ...] = ()


@dataclass
class PendingMessage:
    """A validated row to store, and what storing it costs (minor units; 0 for free)."""

    row: dict[str, Any]
    debit_minor: int = 0
    error: TidingsError | None = field(default=None)


async def resolve_send_plan(session: AsyncSession, tenant_id: str, sms_app_id: str | None,
                            dlt_template_id: str | None,
                            failover_sms_app_ids: Sequence[str] = ()) -> SendPlan:
    """The app (named, else the tenant's default), the stored template, if one is named, and
    the failover apps.

    An unknown or another tenant's ``sms_app_id`` is ``InvalidInput`` (it is a body field);
    no app at all is ``InvalidInput(no_sms_app)``; so is a failover app that is unknown, a
    phone app (phones pull their messages) or the send's own app. A named template that is
    not stored is left for ``build_message_row`` to report where it matters (an Indian number).
    """
    if sms_app_id:
        try:
            app = await get_sms_app(session, tenant_id, sms_app_id)
        except NotFound:
            raise InvalidInput.for_field("sms_app_id", f"no SMS app {sms_app_id}",
                                         "sms_app_not_found") from None
    else:
        found = await default_sms_app(session, tenant_id)
        if found is None:
            raise InvalidInput.for_field("sms_app_id", "the tenant has no SMS app: create one "
                                         "with POST /sms/v1/apps/", "no_sms_app")
        app = found
    body = None
    if dlt_template_id:
        template = await find_by_dlt_id(session, tenant_id, dlt_template_id.strip())
        body = template.body if template is not None else None
    failover = await _failover_app_ids(session, tenant_id, app, failover_sms_app_ids)
    return SendPlan(app=app, template_body=body, failover_app_ids=failover)


async def _failover_app_ids(session: AsyncSession, tenant_id: str, app: ChannelAccount,
                            app_ids: Sequence[str]) -> tuple[str, ...]:
    field_name = "failover_sms_app_ids"
    if app_ids and app.provider in PULL_PROVIDERS:
        raise InvalidInput.for_field(field_name, "a phone app's messages cannot fail over")
    if len(set(app_ids)) != len(app_ids) or app.id in app_ids:
        raise InvalidInput.for_field(field_name, "must name other apps, each once")
    for app_id in app_ids:
        try:
            other = await get_sms_app(session, tenant_id, app_id)
        except NotFound:
            raise InvalidInput.for_field(field_name, f"no SMS app {app_id}",
                                         "sms_app_not_found") from None
        if other.provider in PULL_PROVIDERS:
            raise InvalidInput.for_field(field_name, f"{app_id} is a phone app: phones pull "
                                         "their messages, they cannot take failover")
    return tuple(app_ids)


def build_message_row(plan: SendPlan, sender: Sender, request: SendRequest, *, now: datetime,
                      max_segments: int, batch_id: str | None = None) -> PendingMessage:
    """Validate one send against ``plan`` and return its row (state ``queued``).

    Raises ``InvalidInput`` naming the field: phone, text (empty, or more than
    ``max_segments`` parts), priority, ttl/valid_until (both given, out of range, in the past),
    scheduled_at (in the past, or naive), client_ref, callback_url, sender_id and the DLT rules
    for Indian numbers (``dlt_template_id``).
    """
    app = plan.app
    try:
        phone = to_e164(request.phone, sender.default_region)
    except ValueError as exc:
        raise InvalidInput.for_field("phone", str(exc), "invalid_phone") from None
    text = request.text
    if not text or not text.strip():
        raise InvalidInput.for_field("text", "must not be empty", "empty_text")
    if "\x00" in text:  # PostgreSQL text cannot hold it, and no SMS carries it
        raise InvalidInput.for_field("text", "must not contain the NUL character (U+0000)")
    info = count_segments(text)
    if info.segments > max_segments:
        raise InvalidInput.for_field(
            "text", f"is {info.segments} SMS parts long; at most {max_segments} are allowed "
            "(TIDINGS_SMS_MAX_SEGMENTS)", "text_too_long")
    if not PRIORITY_MIN <= request.priority <= PRIORITY_MAX:
        raise InvalidInput.for_field("priority", f"must be {PRIORITY_MIN} to {PRIORITY_MAX}")
    due = _due_at(request.scheduled_at, now)
    expires_at = _expiry(request, due, now)
    client_ref = _client_ref(request.client_ref)
    callback_url = _callback_url(request.callback_url)
    sender_id = (request.sender_id or "").strip() or app.sender_id
    if sender_id is not None and len(sender_id) > 32:
        raise InvalidInput.for_field("sender_id", "must be at most 32 characters")
    template_id = (request.dlt_template_id or "").strip() or None
    variables: list[str] | None = None
    if app.provider in DLT_ONLY and not requires_dlt(phone):
        raise InvalidInput.for_field("phone", f"{app.provider} sends to Indian (+91) numbers "
                                     "only", "unsupported_destination")
    if requires_dlt(phone) and (app.dlt_entity_id or app.provider in DLT_ONLY):
        problem = dlt_problem(phone=phone, text=text, sender_id=sender_id,
                              template_id=template_id, template_body=plan.template_body,
                              entity_id=app.dlt_entity_id)
        if problem:
            raise InvalidInput.for_field("dlt_template_id", problem, "dlt_mismatch")
        found = extract_variables(text, plan.template_body or "")
        variables = list(found) if found is not None else []
    price = (app.price_per_segment_minor or 0) * info.segments if sender.mode == "live" else 0
    row: dict[str, Any] = {
        "id": new_id(), "seq": None, "tenant_id": sender.tenant_id,
        "channel_account_id": app.id,
        "direction": OUTBOUND, "mode": sender.mode, "client_ref": client_ref,
        "batch_id": batch_id, "android_message_id": None, "to_number": phone,
        "from_number": sender_id, "text": text,
        "encoding": info.encoding.value, "segments": info.segments,
        "priority": request.priority, "state": MessageState.QUEUED.value,
        "dlt_template_id": template_id if variables is not None else None,
        "dlt_entity_id": app.dlt_entity_id if variables is not None else None,
        "dlt_variables": variables, "callback_url": callback_url,
        "route": Route((app.id, *plan.failover_app_ids), 1,
                       (request.sender_id or "").strip() or None).as_json()
        if plan.failover_app_ids else None,
        "price_minor": price or None, "scheduled_at": request.scheduled_at,
        "expires_at": expires_at, "attempts": 0,
        # Live messages of an app whose phones pull them are never the dispatcher's.
        "next_attempt_at": None if app.provider in PULL_PROVIDERS and sender.mode == "live"
        else due,
        "provider_message_id": None, "provider_status": None, "error_code": None,
        "error_detail": None, "created_at": now, "updated_at": now, "sent_at": None,
        "delivered_at": None, "read_at": None, "completed_at": None,
    }
    return PendingMessage(row=row, debit_minor=price)


async def client_ref_taken(session: AsyncSession, tenant_id: str, client_ref: str) -> bool:
    """Whether the tenant already has a message with ``client_ref``."""
    found = await session.execute(select(Message.id).where(
        Message.tenant_id == tenant_id, Message.client_ref == client_ref).limit(1))
    return found.first() is not None


def duplicate_client_ref(client_ref: str) -> Conflict:
    return Conflict(f"a message with client_ref {client_ref!r} was already accepted; "
                    "nothing was sent", "duplicate_client_ref")


async def store_messages(session: AsyncSession, pending: Sequence[PendingMessage],
                         now: datetime) -> None:
    """Insert the rows of ``pending`` in the caller's transaction, debiting the wallet first
    for priced ones; a message the wallet cannot pay for gets ``PaymentRequired`` in its
    ``error`` and is not stored. A duplicate ``client_ref`` raises ``IntegrityError`` for the
    whole call (the caller retries rows one by one to tell which)."""
    rows = []
    for item in pending:
        if item.debit_minor and not await _debit(session, item, now):
            item.error = PaymentRequired(
                "the wallet balance does not cover this message "
                f"({item.debit_minor} minor units); top it up", "insufficient_balance")
            continue
        rows.append(item.row)
    if rows:  # Core, not the ORM's bulk insert: every row is a full dict of column values
        await session.execute(insert(cast(Table, Message.__table__)), rows)


async def _debit(session: AsyncSession, item: PendingMessage, now: datetime) -> bool:
    tenant_id = item.row["tenant_id"]
    amount = item.debit_minor
    result = await session.execute(
        update(Wallet).where(Wallet.tenant_id == tenant_id, Wallet.balance_minor >= amount)
        .values(balance_minor=Wallet.balance_minor - amount, updated_at=now)
        .returning(Wallet.balance_minor).execution_options(synchronize_session=False))
    balance = result.scalar_one_or_none()
    if balance is None:
        return False
    session.add(WalletEntry(id=new_id(), tenant_id=tenant_id, amount_minor=-amount,
                            balance_after_minor=balance, created_at=now,
                            reason=f"SMS {item.row['id']} ({item.row['segments']} segments)"))
    return True


def _due_at(scheduled_at: datetime | None, now: datetime) -> datetime:
    if scheduled_at is None:
        return now
    if scheduled_at.utcoffset() is None:
        raise InvalidInput.for_field("scheduled_at", "must include a timezone (e.g. Z)")
    if scheduled_at < now:
        raise InvalidInput.for_field("scheduled_at", "is in the past", "scheduled_in_past")
    return scheduled_at


def _expiry(request: SendRequest, due: datetime, now: datetime) -> datetime | None:
    if request.ttl is not None and request.valid_until is not None:
        raise InvalidInput.for_field("ttl", "give ttl or valid_until, not both",
                                     "ttl_and_valid_until")
    if request.ttl is not None:
        if not 1 <= request.ttl <= MAX_TTL_SECONDS:
            raise InvalidInput.for_field("ttl", f"must be 1 to {MAX_TTL_SECONDS} seconds")
        try:
            return due + timedelta(seconds=request.ttl)
        except OverflowError:  # scheduled_at at the end of the calendar
            raise InvalidInput.for_field("ttl", "ends after the year 9999") from None
    if request.valid_until is not None:
        if request.valid_until.utcoffset() is None:
            raise InvalidInput.for_field("valid_until", "must include a timezone (e.g. Z)")
        if request.valid_until <= due:
            raise InvalidInput.for_field("valid_until", "must be after the send time")
        return request.valid_until
    return None


def _client_ref(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not 1 <= len(value) <= MAX_CLIENT_REF:
        raise InvalidInput.for_field("client_ref", f"must be 1 to {MAX_CLIENT_REF} characters")
    return value


def _callback_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 2000:
        raise InvalidInput.for_field("callback_url", "must be an http(s) URL")
    return value.strip()


async def prepare_message(reads: AsyncSession, sender: Sender, request: SendRequest, *,
                          now: datetime, max_segments: int) -> PendingMessage:
    """Validate one send and return the row to store. Raises ``InvalidInput`` or
    ``Conflict(duplicate_client_ref)`` (the early check; the unique index is the guarantee).
    Only reads, so the caller can close ``reads`` before the (slower) write."""
    plan = await resolve_send_plan(reads, sender.tenant_id, request.sms_app_id,
                                   request.dlt_template_id, request.failover_sms_app_ids)
    pending = build_message_row(plan, sender, request, now=now, max_segments=max_segments)
    client_ref = pending.row["client_ref"]
    if client_ref is not None and await client_ref_taken(reads, sender.tenant_id, client_ref):
        raise duplicate_client_ref(client_ref)
    return pending


async def store_one(write: Callable[[list[PendingMessage]], Awaitable[None]],
                    pending: PendingMessage) -> dict[str, Any]:
    """Store a prepared message with ``write`` (which returns once committed) and return its
    stored row. Raises what storing raised (``Conflict``), or ``PaymentRequired`` when the
    wallet could not pay; then nothing was stored."""
    await write([pending])
    if pending.error is not None:
        raise pending.error
    return pending.row


async def tenant_sender(reads: AsyncSession, tenant_id: str, mode: str) -> Sender:
    """The ``Sender`` for a tenant's caller in ``mode`` (``live`` or ``test``)."""
    region = (await reads.execute(select(Tenant.default_region).where(
        Tenant.id == tenant_id))).scalar_one()
    return Sender(tenant_id=tenant_id, default_region=region, mode=mode)


class SendPreparer:
    """``prepare_message`` for the API's hot path: the tenant's ``Sender`` and each
    ``SendPlan`` are cached for a few seconds (``cache``), so a send usually reads nothing but
    its ``client_ref`` check. An app or template change reaches sends within the cache's life.
    """

    def __init__(self, reads: async_sessionmaker[AsyncSession], cache: TtlCache[Any]) -> None:
        self._reads = reads
        self._cache = cache

    async def prepare(self, tenant_id: str, mode: str, request: SendRequest, *,
                      now: datetime, max_segments: int) -> PendingMessage:
        sender_key = ("sender", tenant_id, mode)
        plan_key = ("plan", tenant_id, request.sms_app_id or None,
                    (request.dlt_template_id or "").strip() or None,
                    tuple(request.failover_sms_app_ids))
        sender: Sender | None = self._cache.get(sender_key)
        plan: SendPlan | None = self._cache.get(plan_key)
        if sender is not None and plan is not None and request.client_ref is None:
            return build_message_row(plan, sender, request, now=now, max_segments=max_segments)
        async with self._reads() as reads:
            if sender is None:
                sender = await tenant_sender(reads, tenant_id, mode)
                self._cache.put(sender_key, sender)
            if plan is None:
                plan = await resolve_send_plan(reads, tenant_id, request.sms_app_id,
                                               request.dlt_template_id,
                                               request.failover_sms_app_ids)
                self._cache.put(plan_key, plan)
            pending = build_message_row(plan, sender, request, now=now,
                                        max_segments=max_segments)
            client_ref = pending.row["client_ref"]
            if client_ref is not None and await client_ref_taken(reads, tenant_id, client_ref):
                raise duplicate_client_ref(client_ref)
        return pending
