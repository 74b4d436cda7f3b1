"""The provider-agnostic SMS outbox (``/api/v1/sms/outbox``): one SMS that goes through
whichever of the tenant's SMS apps takes it first.

**Route.** A job is one ``messages`` row (same id) with a failover route
(``tidings.domain.routing``) over the tenant's active SMS apps that have a slug (every provider
but phones): the app of ``preferred_provider_slug`` first, then the tenant's default app, then
the others oldest first. The dispatcher sends it like any message; a provider that rejects it
or fails moves it to the next app at once (an app that rejected it is never tried again) and
the first that accepts finalises the job. When a whole round has failed, the job waits for the
retry backoff (``TIDINGS_RETRY_*``, one attempt per round) and goes round again.

**Deadline.** A job must be sent within ``TIDINGS_OUTBOX_DISPATCH_TIMEOUT_SECONDS`` (15 minutes
by default) of its send time (``datetime``, else when it was accepted); at the deadline the
message expires and the job ends ``dispatch_timeout``.

**Status.** ``dispatch_status`` is read from the message: ``pending`` (queued, not tried yet),
``sending`` (being sent, or queued for the next app or round), ``sent`` (a provider accepted
it; its delivery reports move the message, shown as ``state``), ``failed`` (every app refused
it, or the rounds ran out), ``dispatch_timeout`` or ``cancelled`` (through the native API).

**Idempotency.** A repeated ``idempotency_key`` of the same tenant answers the existing job with
``idempotent_replay: true`` and stores and sends nothing, whatever the rest of the request
says; the unique index settles two racing requests (the loser answers the winner's job).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.config import Settings
from tidings.db.models import ChannelAccount, Message, MessageEvent, OutboxJob
from tidings.db.repos.scoped import owned_by
from tidings.domain.routing import Route
from tidings.domain.states import MessageState
from tidings.errors import InvalidInput, NotFound
from tidings.providers.registry import PULL_PROVIDERS, slug_of
from tidings.services.provider_slugs import (
    app_for_slug,
    build_slug_message,
)
from tidings.services.sms_apps import ACTIVE, SMS_KIND
from tidings.services.sms_send import (
    Sender,
    store_messages,
)

MAX_IDEMPOTENCY_KEY = 128
MAX_META_BYTES = 4096
_S = MessageState
_STATUS_BY_STATE = {
    _S.SENDING.value: "sending", _S.SENT.value: "sent", _S.DELIVERED.value: "sent",
    _S.READ.value: "sent", _S.FAILED.value: "failed", _S.EXPIRED.value: "dispatch_timeout",
    _S.CANCELLED.value: "cancelled",
}


@dataclass(frozen=True)
class OutboxRequest:
    """``POST /api/v1/sms/outbox`` as the caller sent it (types checked, nothing else)."""

    mobile: str
    message: str
    sender: str | None = None
    send_at: str | None = None
    preferred_provider_slug: str | None = None
    idempotency_key: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class OutboxAttempt:
    """One try of one app: its answer (``accepted``, ``retry``, ``reject``), code and reason."""

    attempt: int
    sms_app_id: str | None
    provider_slug: str | None
    outcome: str
    code: str | None
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class OutboxJobView:
    """A job as the outbox shows it: the request, where it stands, and every attempt."""

    id: str
    dispatch_status: str
    state: str
    mobile: str
    message: str
    sender: str | None
    scheduled_at: datetime | None
    deadline: datetime | None
    preferred_provider_slug: str | None
    idempotency_key: str | None
    meta: dict[str, Any] | None
    sms_app_id: str
    provider_slug: str | None
    provider_message_id: str | None
    error_code: str | None
    error_detail: str | None
    created_at: datetime
    updated_at: datetime
    attempts: list[OutboxAttempt]


def dispatch_status(message: Message) -> str:
    """The outbox's word for where ``message`` stands (module docstring)."""
    if message.state == _S.QUEUED.value:
        return "sending" if message.attempts else "pending"
    return _STATUS_BY_STATE.get(message.state, message.state)


async def accept_outbox_job(session: AsyncSession, sender: Sender, request: OutboxRequest, *,
                            now: datetime, settings: Settings) -> tuple[str, str, bool]:
    """Store a job, or find the one its ``idempotency_key`` names; commits.

    Answers ``(job id, dispatch status, idempotent replay?)``. Raises ``InvalidInput`` (with
    the slug API's field names) for bad input, an unknown or uninstalled preferred slug, or a
    tenant without any app to send through; then nothing is stored.
    """
    key = _idempotency_key(request.idempotency_key)
    if key is not None:
        found = await _job_for_key(session, sender.tenant_id, key)
        if found is not None:
            return found.id, dispatch_status(found), True
    meta = _meta(request.meta)
    apps = await _route_apps(session, sender.tenant_id, request.preferred_provider_slug)
    pending = build_slug_message(
        apps[0], sender, mobile=request.mobile, message=request.message,
        sender_name=request.sender, send_at=request.send_at, now=now,
        max_segments=settings.sms_max_segments, ttl=settings.outbox_dispatch_timeout_seconds)
    sender_id = (request.sender or "").strip() or None
    pending.row["route"] = Route(tuple(app.id for app in apps), 1, sender_id).as_json()
    await store_messages(session, [pending], now)
    if pending.error is not None:
        raise pending.error
    session.add(OutboxJob(id=pending.row["id"], tenant_id=sender.tenant_id,
                          idempotency_key=key,
                          preferred_provider_slug=request.preferred_provider_slug or None,
                          meta=meta, created_at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        found = await _job_for_key(session, sender.tenant_id, key) if key else None
        if found is None:
            raise
        return found.id, dispatch_status(found), True
    return pending.row["id"], "pending", False


async def get_outbox_job(session: AsyncSession, tenant_id: str, job_id: str) -> OutboxJobView:
    """The tenant's job ``job_id`` with its attempts; ``NotFound`` for another tenant's."""
    row = (await session.execute(
        select(OutboxJob, Message, ChannelAccount.provider)
        .join(Message, Message.id == OutboxJob.id)
        .join(ChannelAccount, ChannelAccount.id == Message.channel_account_id)
        .where(OutboxJob.id == job_id, OutboxJob.tenant_id == tenant_id))).first()
    if row is None:
        raise NotFound(f"no outbox job {job_id}", "outbox_job_not_found")
    job, message, provider = row
    events = (await session.execute(
        select(MessageEvent).where(MessageEvent.message_id == job_id,
                                   MessageEvent.kind == "attempt")
        .order_by(MessageEvent.id))).scalars()
    return OutboxJobView(
        id=job.id, dispatch_status=dispatch_status(message), state=message.state,
        mobile=message.to_number, message=message.text, sender=message.from_number,
        scheduled_at=message.scheduled_at, deadline=message.expires_at,
        preferred_provider_slug=job.preferred_provider_slug,
        idempotency_key=job.idempotency_key, meta=job.meta,
        sms_app_id=message.channel_account_id, provider_slug=slug_of(provider),
        provider_message_id=message.provider_message_id, error_code=message.error_code,
        error_detail=message.error_detail, created_at=job.created_at,
        updated_at=message.updated_at, attempts=[_attempt(event) for event in events])


def _attempt(event: MessageEvent) -> OutboxAttempt:
    detail = event.detail
    return OutboxAttempt(
        attempt=int(detail.get("attempt") or 0), sms_app_id=detail.get("sms_app_id"),
        provider_slug=slug_of(str(detail.get("provider") or "")),
        outcome=str(detail.get("outcome") or ""), code=detail.get("code"),
        reason=detail.get("reason"), at=event.created_at)


async def _job_for_key(session: AsyncSession, tenant_id: str, key: str) -> Message | None:
    return (await session.execute(
        select(Message).join(OutboxJob, OutboxJob.id == Message.id)
        .where(OutboxJob.tenant_id == tenant_id, OutboxJob.idempotency_key == key))
    ).scalar_one_or_none()


async def _route_apps(session: AsyncSession, tenant_id: str,
                      preferred_slug: str | None) -> list[ChannelAccount]:
    """The apps a job may go through, in order (module docstring)."""
    apps = list((await session.execute(
        owned_by(ChannelAccount, tenant_id)
        .where(ChannelAccount.kind == SMS_KIND, ChannelAccount.status == ACTIVE,
               ChannelAccount.provider.not_in(PULL_PROVIDERS))
        .order_by(ChannelAccount.is_default.desc(), ChannelAccount.created_at,
                  ChannelAccount.id))).scalars())
    if preferred_slug:
        preferred = await app_for_slug(session, tenant_id, preferred_slug)
        apps = [preferred] + [app for app in apps if app.id != preferred.id]
    if not apps:
        raise InvalidInput("the tenant has no SMS app to send through: install one with "
                           "POST /sms/v1/apps/", "no_sms_app")
    return apps


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput.for_field("idempotency_key",
                                     f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return key


def _meta(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_META_BYTES:
        raise InvalidInput.for_field("meta", f"must be at most {MAX_META_BYTES} bytes of JSON")
    return value
