"""The provider-slug API's view of a tenant's SMS apps: which app a slug names, and the account
queries (balance, sender names) made through it.

A slug names a provider (``infobip-sms``: ``tidings.providers.registry.provider_for_slug``); the
tenant's app for it is its default app when that is of this provider, else its oldest active
app of this provider. An unknown slug, or one with no app installed, is ``InvalidInput`` (the
surface answers 400 ``{"error": ...}``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.config import Settings
from tidings.db.models import ChannelAccount
from tidings.db.repos.scoped import owned_by
from tidings.domain.crypto import SecretBox
from tidings.errors import InvalidInput
from tidings.providers.base import AccountContext
from tidings.providers.registry import provider_for_slug, provider_slugs, sms_provider
from tidings.services.sms_apps import ACTIVE, SMS_KIND, account_context


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
