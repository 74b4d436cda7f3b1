"""The provider-slug API's view of a tenant's SMS apps: which app a slug names, and the account
queries (balance, sender names) made through it.

A slug names a provider (``infobip-sms``: ``tidings.providers.registry.provider_for_slug``); the
tenant's app for it is its default app when that is of this provider, else its oldest active
app of this provider. An unknown slug, or one with no app installed, is ``InvalidInput`` (the
surface answers 400 ``{"error": ...}``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.config import Settings
from tidings.db.models import ChannelAccount
from tidings.db.repos.scoped import owned_by
from tidings.domain.crypto import SecretBox
from tidings.domain.phone import InvalidPhone, to_e164_digits_first
from tidings.errors import FieldError, InvalidInput
from tidings.providers.base import AccountContext
from tidings.providers.registry import provider_for_slug, provider_slugs, sms_provider
from tidings.services.sms_apps import ACTIVE, SMS_KIND, account_context
from tidings.services.sms_send import (
    PendingMessage,
    Sender,
    SendPlan,
    SendRequest,
    build_message_row,
)


async def app_for_slug(session: AsyncSession, tenant_id: str, slug: str) -> ChannelAccount:
    """The tenant's app for ``slug`` (module docstring); ``InvalidInput`` when there is none."""
    provider = provider_for_slug(slug)
    if provider is None:
        raise InvalidInput(f"unknown provider slug {slug!r}; the slugs are "
                           + ", ".join(provider_slugs()), "unknown_slug")
    app = (await session.execute(
        owned_by(ChannelAccount, tenant_id)
        .where(ChannelAccount.kind == SMS_KIND, ChannelAccount.status == ACTIVE,
               ChannelAccount.provider == provider)
        .order_by(ChannelAccount.is_default.desc(), ChannelAccount.created_at,
                  ChannelAccount.id).limit(1))).scalar_one_or_none()
    if app is None:
        raise InvalidInput(f"no {provider} app is installed for this tenant: install one with "
                           f'POST /sms/v1/apps/ {{"provider": "{provider}", ...}}',
                           "app_not_installed")
    return app


def provider_context(app: ChannelAccount, box: SecretBox, settings: Settings) -> AccountContext:
    """The provider's view of ``app``, with the operator's base-URL override applied."""
    module = sms_provider(app.provider)
    return account_context(app, box, settings.public_url,
                           settings.provider_url(module.slug, module.default_base_url))


_FIELD_NAMES = {"phone": "mobile", "text": "message", "sender_id": "sender",
                "scheduled_at": "datetime"}


def in_slug_terms(exc: InvalidInput) -> InvalidInput:
    """``exc`` (from ``build_message_row``) with the native field names replaced by the slug
    API's: ``phone`` -> ``mobile``, ``text`` -> ``message``, ``sender_id`` -> ``sender``,
    ``scheduled_at`` -> ``datetime``."""
    fields = [FieldError(_FIELD_NAMES.get(f.field, f.field), f.message) for f in exc.fields]
    detail = exc.detail
    for error, renamed in zip(exc.fields, fields, strict=True):
        if detail.startswith(f"{error.field}: "):
            detail = f"{renamed.field}: " + detail[len(error.field) + 2:]
    return InvalidInput(detail, exc.code, fields)


def parse_send_time(value: str | None, now: datetime) -> datetime | None:
    """The slug API's ``datetime``: ISO 8601, a naive one is UTC. ``None`` (send now) when it
    is empty or not in the future; ``InvalidInput`` when it is not a date and time."""
    if value is None or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput.for_field("datetime", "must be an ISO 8601 date and time "
                                     "(2026-12-01T09:30:00Z)", "invalid_datetime") from None
    if when.utcoffset() is None:
        when = when.replace(tzinfo=UTC)
    return when if when > now else None


def slug_mobile(mobile: str, default_region: str) -> str:
    """The slug API's ``mobile`` in E.164: international with or without ``+``/``00``, or
    national in the tenant's region. ``InvalidInput`` naming ``mobile`` otherwise."""
    try:
        return to_e164_digits_first(mobile, default_region)
    except InvalidPhone as exc:
        raise InvalidInput.for_field("mobile", str(exc), "invalid_phone") from None


_NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,15}")
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 .\-_&]{1,11}")


def sender_problem(sender: str) -> str | None:
    """Why ``sender`` cannot be an SMS sender, or None: a number of up to 15 digits (an
    optional ``+``), or 1 to 11 letters, digits, spaces and ``. - _ &`` (what an alphanumeric
    originator holds on the air). The same rule for every send of the slug API."""
    if _NUMERIC_SENDER.fullmatch(sender) or _ALPHANUMERIC_SENDER.fullmatch(sender):
        return None
    return "must be a number of up to 15 digits, or 1 to 11 letters, digits, spaces and . - _ &"


def build_slug_message(app: ChannelAccount, sender: Sender, *, mobile: str, message: str,
                       sender_name: str | None, send_at: str | None, now: datetime,
                       max_segments: int, ttl: int | None = None) -> PendingMessage:
    """One slug-API send (``mobile``, ``message``, ``sender``, ``datetime``) as the row a native
    send through ``app`` would store; ``InvalidInput`` in the slug API's field names."""
    sender_name = (sender_name or "").strip() or None
    if sender_name is not None and (problem := sender_problem(sender_name)) is not None:
        raise InvalidInput.for_field("sender", problem, "invalid_sender")
    try:
        return build_message_row(
            SendPlan(app=app, template_body=None), sender,
            SendRequest(phone=slug_mobile(mobile, sender.default_region), text=message,
                        sms_app_id=app.id, sender_id=sender_name,
                        scheduled_at=parse_send_time(send_at, now), ttl=ttl),
            now=now, max_segments=max_segments)
    except InvalidInput as exc:
        raise in_slug_terms(exc) from None
