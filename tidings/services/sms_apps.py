"""SMS apps: a tenant's installed provider accounts (``channel_accounts`` of kind ``sms``).

Credentials are validated by the provider's ``credentials_model`` and stored only as a
``SecretBox`` token bound to the app id; views list which credential keys are set, never the
values. Each app gets a random webhook token, which the webhook URLs carry for providers that
cannot sign their webhooks. One app per tenant may be the default (the first app always is).
Deleting an app marks it ``deleted``: its messages keep their history, it answers 404 and sends
nothing more (queued messages fail with ``app_deleted`` when claimed). An app may name one of
the tenant's service profiles (``service_profile_id``: where its inbound messages and delivery
receipts are called back) and may forward inbound SMS to full numbers (``p2p_enabled``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.config import parse_rate
from tidings.db.models import ChannelAccount, ServiceProfile
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.crypto import SecretBox
from tidings.domain.dlt import sender_id_problem
from tidings.domain.ids import new_id
from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.providers.base import AccountContext
from tidings.providers.registry import DLT_ONLY, SMS_PROVIDERS, sms_provider

SMS_KIND = "sms"
ACTIVE = "active"
DELETED = "deleted"


@dataclass(frozen=True)
class SmsAppFields:
    """What a create or update sets; on update ``None`` leaves a field as it is (``unset``
    names the optional fields to clear)."""

    name: str | None = None
    provider: str | None = None
    sender_id: str | None = None
    dlt_entity_id: str | None = None
    provider_credentials: Mapping[str, Any] | None = None
    provider_config: Mapping[str, Any] | None = None
    rate_limit: str | None = None
    daily_limit: int | None = None
    price_per_segment_minor: int | None = None
    is_default: bool | None = None
    service_profile_id: str | None = None
    p2p_enabled: bool | None = None
    unset: frozenset[str] = frozenset()


def credentials_context(app_id: str) -> bytes:
    """The associated data that binds an app's credential token to that app."""
    return f"channel_accounts:{app_id}:credentials".encode()


def webhook_urls(account: ChannelAccount, public_url: str) -> tuple[str, str]:
    """``(inbound, dlr)``: the app's public webhook URLs, carrying its token."""
    base = f"{public_url.rstrip('/')}/sms/v1/webhooks/{account.id}"
    query = f"?token={account.webhook_token}"
    return f"{base}/inbound/{query}", f"{base}/dlr/{query}"


def account_context(account: ChannelAccount, box: SecretBox, public_url: str,
                    base_url: str, *, provider: str | None = None) -> AccountContext:
    """The provider's view of ``account``: decrypted credentials, config and webhook URLs.
    ``provider`` overrides the app's own (test-mode traffic goes to the simulator)."""
    inbound, dlr = webhook_urls(account, public_url)
    same = provider is None or provider == account.provider
    credentials = box.decrypt_json(account.credentials, context=credentials_context(account.id))
    return AccountContext(
        account_id=account.id, base_url=base_url,
        credentials={k: str(v) for k, v in credentials.items()} if same else {},
        config=account.config if same else {},
        webhook_url_dlr=dlr, webhook_url_inbound=inbound, webhook_token=account.webhook_token)


async def create_sms_app(session: AsyncSession, box: SecretBox, *, tenant_id: str,
                         fields: SmsAppFields, default_rate_limit: str,
                         now: datetime) -> ChannelAccount:
    """Install a provider account for the tenant. Raises ``InvalidInput`` listing every bad
    field (unknown provider, credentials or config the provider refuses, bad rate, a service
    profile that is not the tenant's)."""
    if fields.name is None or fields.provider is None:
        raise InvalidInput.for_field("name" if fields.name is None else "provider",
                                     "is required")
    app_id = new_id()
    credentials, config = _validated_provider_fields(
        fields.provider, fields.provider_credentials or {}, fields.provider_config or {})
    _check_plain_fields(fields, fields.provider)
    await _check_service_profile(session, tenant_id, fields.service_profile_id)
    has_apps = (await session.execute(
        owned_by(ChannelAccount, tenant_id).where(ChannelAccount.kind == SMS_KIND,
                                                  ChannelAccount.status == ACTIVE).limit(1)
    )).first() is not None
    is_default = bool(fields.is_default) or not has_apps
    if is_default:
        await _clear_default(session, tenant_id)
    account = ChannelAccount(
        id=app_id, tenant_id=tenant_id, kind=SMS_KIND, provider=fields.provider,
        name=fields.name.strip(), sender_id=_blank_to_none(fields.sender_id),
        dlt_entity_id=_blank_to_none(fields.dlt_entity_id), config=config,
        credentials=box.encrypt_json(credentials, context=credentials_context(app_id)),
        credential_keys=sorted(credentials), webhook_token=secrets.token_urlsafe(24),
        rate_limit=(fields.rate_limit or default_rate_limit).strip(),
        daily_limit=fields.daily_limit, price_per_segment_minor=fields.price_per_segment_minor,
        is_default=is_default, service_profile_id=fields.service_profile_id,
        p2p_enabled=bool(fields.p2p_enabled), status=ACTIVE, daily_day=None, daily_sent=0,
        daily_segments=0, created_at=now, updated_at=now)
    session.add(account)
    await session.flush()
    return account


async def update_sms_app(session: AsyncSession, box: SecretBox, *, tenant_id: str,
                         app_id: str, fields: SmsAppFields, now: datetime) -> ChannelAccount:
    """Change an app. New credentials replace the old ones whole (validated the same way);
    changing the provider requires credentials for the new one."""
    account = await get_sms_app(session, tenant_id, app_id)
    provider = fields.provider or account.provider
    if provider != account.provider and fields.provider_credentials is None:
        raise InvalidInput.for_field("provider_credentials",
                                     f"changing the provider needs {provider} credentials")
    if fields.provider_credentials is not None or fields.provider_config is not None \
            or provider != account.provider:
        old_credentials = box.decrypt_json(account.credentials,
                                           context=credentials_context(account.id))
        credentials, config = _validated_provider_fields(
            provider,
            fields.provider_credentials if fields.provider_credentials is not None
            else old_credentials,
            fields.provider_config if fields.provider_config is not None else account.config)
        account.credentials = box.encrypt_json(credentials,
                                               context=credentials_context(account.id))
        account.credential_keys = sorted(credentials)
        account.config = config
        account.provider = provider
    _check_plain_fields(fields, provider)
    await _check_service_profile(session, tenant_id, fields.service_profile_id)
    if fields.name is not None:
        account.name = fields.name.strip()
    for name in ("sender_id", "dlt_entity_id"):
        value = getattr(fields, name)
        if value is not None or name in fields.unset:
            setattr(account, name, _blank_to_none(value))
    if fields.rate_limit is not None:
        account.rate_limit = fields.rate_limit.strip()
    for name in ("daily_limit", "price_per_segment_minor", "service_profile_id"):
        value = getattr(fields, name)
        if value is not None or name in fields.unset:
            setattr(account, name, value)
    if fields.is_default:
        await _clear_default(session, tenant_id)
        account.is_default = True
    if fields.p2p_enabled is not None:
        account.p2p_enabled = fields.p2p_enabled
    account.updated_at = now
    await session.flush()
    return account


async def delete_sms_app(session: AsyncSession, *, tenant_id: str, app_id: str,
                         now: datetime) -> None:
    """Retire an app (see the module docstring); another app becomes the default if it was."""
    account = await get_sms_app(session, tenant_id, app_id)
    account.status = DELETED
    account.is_default = False
    account.updated_at = now
    await session.flush()
    successor = (await session.execute(
        owned_by(ChannelAccount, tenant_id)
        .where(ChannelAccount.kind == SMS_KIND, ChannelAccount.status == ACTIVE)
        .order_by(ChannelAccount.id).limit(1))).scalar_one_or_none()
    if successor is not None and not await _has_default(session, tenant_id):
        successor.is_default = True
        await session.flush()


async def get_sms_app(session: AsyncSession, tenant_id: str, app_id: str) -> ChannelAccount:
    """The tenant's active app ``app_id``; ``NotFound(sms_app_not_found)`` otherwise."""
    account = (await session.execute(
        owned_by(ChannelAccount, tenant_id).where(
            ChannelAccount.id == app_id, ChannelAccount.kind == SMS_KIND,
            ChannelAccount.status == ACTIVE))).scalar_one_or_none()
    if account is None:
        raise NotFound(f"SMS app {app_id} not found", "sms_app_not_found")
    return account


async def default_sms_app(session: AsyncSession, tenant_id: str) -> ChannelAccount | None:
    """The tenant's default active app, if any."""
    return (await session.execute(
        owned_by(ChannelAccount, tenant_id).where(
            ChannelAccount.kind == SMS_KIND, ChannelAccount.status == ACTIVE,
            ChannelAccount.is_default.is_(True)).limit(1))).scalar_one_or_none()


def list_sms_apps_query(tenant_id: str) -> Any:
    """The tenant's active apps, oldest first (for paging)."""
    return owned_by(ChannelAccount, tenant_id).where(
        ChannelAccount.kind == SMS_KIND, ChannelAccount.status == ACTIVE
    ).order_by(ChannelAccount.id)


async def find_app_for_webhook(session: AsyncSession, app_id: str) -> ChannelAccount | None:
    """Any tenant's active SMS app by id (webhooks carry no tenant; the token proves it)."""
    return (await session.execute(
        select(ChannelAccount).where(ChannelAccount.id == app_id,
                                     ChannelAccount.kind == SMS_KIND,
                                     ChannelAccount.status == ACTIVE))).scalar_one_or_none()


def _validated_provider_fields(provider: str, credentials: Mapping[str, Any],
                               config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if provider not in SMS_PROVIDERS:
        raise InvalidInput.for_field("provider",
                                     f"must be one of {', '.join(sorted(SMS_PROVIDERS))}")
    module = sms_provider(provider)
    problems: list[FieldError] = []
    validated: list[dict[str, Any]] = []
    for field, model, value in (("provider_credentials", module.credentials_model, credentials),
                                ("provider_config", module.config_model, config)):
        try:
            validated.append(model.model_validate(dict(value)).model_dump(exclude_none=True))
        except pydantic.ValidationError as exc:
            validated.append({})
            # Only locations and messages: the submitted values (secrets) are never echoed.
            problems.extend(
                FieldError(".".join([field, *map(str, error["loc"])]), error["msg"])
                for error in exc.errors(include_input=False))
    if problems:
        raise InvalidInput(f"{provider} {problems[0].field}: {problems[0].message}",
                           fields=problems)
    return validated[0], validated[1]


def _check_plain_fields(fields: SmsAppFields, provider: str) -> None:
    if fields.name is not None and not 1 <= len(fields.name.strip()) <= 200:
        raise InvalidInput.for_field("name", "must be 1 to 200 characters")
    if fields.rate_limit is not None:
        try:
            parse_rate(fields.rate_limit)
        except ValueError as exc:
            raise InvalidInput.for_field("rate_limit", str(exc)) from None
    if fields.daily_limit is not None and fields.daily_limit < 1:
        raise InvalidInput.for_field("daily_limit", "must be at least 1 (or null for none)")
    if fields.price_per_segment_minor is not None and fields.price_per_segment_minor < 0:
        raise InvalidInput.for_field("price_per_segment_minor", "must be zero or more")
    if fields.sender_id is not None and len(fields.sender_id.strip()) > 32:
        raise InvalidInput.for_field("sender_id", "must be at most 32 characters")
    if provider in DLT_ONLY and fields.sender_id is not None:
        problem = sender_id_problem(fields.sender_id.strip())
        if problem:
            raise InvalidInput.for_field("sender_id", problem)


async def _check_service_profile(session: AsyncSession, tenant_id: str,
                                 profile_id: str | None) -> None:
    if profile_id is not None and await get_owned(session, ServiceProfile, tenant_id,
                                                  profile_id) is None:
        raise InvalidInput.for_field("service_profile_id", f"no service profile {profile_id}",
                                     "service_profile_not_found")


async def _clear_default(session: AsyncSession, tenant_id: str) -> None:
    await session.execute(
        update(ChannelAccount)
        .where(ChannelAccount.tenant_id == tenant_id, ChannelAccount.kind == SMS_KIND)
        .values(is_default=False).execution_options(synchronize_session=False))


async def _has_default(session: AsyncSession, tenant_id: str) -> bool:
    return await default_sms_app(session, tenant_id) is not None


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None
