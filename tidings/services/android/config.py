"""A login's webhook registrations and settings, which its phones fetch and act on (the server
only stores them: the phones send the webhooks). Callers push ``WebhooksUpdated`` /
``SettingsUpdated`` to the login's phones after committing a change."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import AndroidDevice, AndroidLogin, AndroidWebhook
from tidings.domain.android import (
    WEBHOOK_EVENTS,
    merge_settings,
    new_nanoid,
)
from tidings.domain.ids import new_id
from tidings.errors import InvalidInput
from tidings.services.android.access import AndroidCaller

MAX_WEBHOOK_ID = 36
MAX_URL = 2048


async def list_webhooks(session: AsyncSession, caller: AndroidCaller) -> list[AndroidWebhook]:
    """The login's webhooks, oldest first."""
    return list((await session.execute(select(AndroidWebhook).where(
        AndroidWebhook.login_id == caller.login_id)
        .order_by(AndroidWebhook.created_at, AndroidWebhook.id))).scalars())


async def device_webhooks(session: AsyncSession, device: AndroidDevice) -> list[AndroidWebhook]:
    """The webhooks a phone must send: its login's, for every phone or for this one."""
    return list((await session.execute(select(AndroidWebhook).where(
        AndroidWebhook.login_id == device.login_id,
        (AndroidWebhook.device_id.is_(None)) | (AndroidWebhook.device_id == device.id))
        .order_by(AndroidWebhook.created_at, AndroidWebhook.id))).scalars())


async def upsert_webhook(session: AsyncSession, caller: AndroidCaller, *, ext_id: str | None,
                         url: str, event: str, device_id: str | None,
                         now: datetime) -> AndroidWebhook:
    """Create the webhook, or replace the one with ``ext_id`` (generated when absent). The URL
    must be ``https://`` (phones refuse anything else), the event one the app sends, the
    device one of the login's."""
    if event not in WEBHOOK_EVENTS:
        raise InvalidInput.for_field("event", "must be one of " + ", ".join(
            sorted(WEBHOOK_EVENTS)))
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname or len(url) > MAX_URL:
        raise InvalidInput.for_field("url", "must be an https:// URL")
    if ext_id is not None and not 1 <= len(ext_id) <= MAX_WEBHOOK_ID:
        raise InvalidInput.for_field("id", f"must be 1 to {MAX_WEBHOOK_ID} characters")
    if device_id is not None:
        owned = (await session.execute(select(AndroidDevice.id).where(
            AndroidDevice.id == device_id, AndroidDevice.login_id == caller.login_id,
            AndroidDevice.deleted_at.is_(None)))).first()
        if owned is None:
            raise InvalidInput.for_field("deviceId", "no such device")
    hook = None
    if ext_id is not None:
        hook = (await session.execute(select(AndroidWebhook).where(
            AndroidWebhook.login_id == caller.login_id,
            AndroidWebhook.ext_id == ext_id))).scalar_one_or_none()
    if hook is None:
        hook = AndroidWebhook(id=new_id(), tenant_id=caller.tenant_id, login_id=caller.login_id,
                              ext_id=ext_id or new_nanoid(), created_at=now)
        session.add(hook)
    hook.url, hook.event, hook.device_id, hook.updated_at = url.strip(), event, device_id, now
    await session.flush()
    return hook


async def delete_webhook(session: AsyncSession, caller: AndroidCaller, ext_id: str) -> None:
    """Delete the login's webhook ``ext_id``; an unknown id is not an error (the original
    answers 204 either way)."""
    await session.execute(delete(AndroidWebhook).where(
        AndroidWebhook.login_id == caller.login_id, AndroidWebhook.ext_id == ext_id))


async def login_settings(session: AsyncSession, login_id: str) -> dict[str, Any]:
    """The login's stored settings (secrets included: phones need them)."""
    login = await session.get(AndroidLogin, login_id)
    return dict(login.settings or {}) if login is not None else {}


async def change_settings(session: AsyncSession, caller: AndroidCaller,
                          value: Mapping[str, Any], *, replace: bool,
                          now: datetime) -> dict[str, Any]:
    """PATCH (merge ``value`` into the settings) or PUT (``replace`` them); unknown keys are
    dropped, a known key with a bad value is ``InvalidInput``. Answers the new settings."""
    try:
        current = {} if replace else await login_settings(session, caller.login_id)
        settings = merge_settings(current, value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    login = await session.get(AndroidLogin, caller.login_id)
    assert login is not None  # the caller was authenticated as this login
    login.settings = settings
    login.updated_at = now
    await session.flush()
    return settings


async def device_ids_of_login(session: AsyncSession, login_id: str) -> list[str]:
    """The login's live phones (whom a change is pushed to)."""
    return list((await session.execute(select(AndroidDevice.id).where(
        AndroidDevice.login_id == login_id, AndroidDevice.deleted_at.is_(None)))).scalars())


async def device_ids_of_app(session: AsyncSession, app_id: str) -> list[str]:
    """Every live phone of an Android app, whatever its login (who may pull its messages)."""
    return list((await session.execute(select(AndroidDevice.id).where(
        AndroidDevice.channel_account_id == app_id, AndroidDevice.deleted_at.is_(None))
        )).scalars())
