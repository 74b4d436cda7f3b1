"""The tenant's onboarding checklist, computed from its real state on every call (nothing is
stored, so a step undone, e.g. its only extra key revoked, shows as not completed again).

Flows and when each counts as completed:

``invite_team``     the tenant has more than one membership (a pending invitation counts).
``create_api_key``  the tenant holds an unrevoked API key other than its first one: the first is
                    the owner key ``tidings tenant create`` prints with the tenant, so this step
                    asks for a key made for an application (``POST /tenants/api-keys/`` or
                    ``tidings apikey create``).
``import_contacts`` the tenant has at least one contact.
``set_branding``    any of the custom domain, logo URL or email sender is set.

Later issues add channel flows here (install an SMS app, connect WhatsApp, Telegram, RCS…),
each completed by the tenant's own channel accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import ApiKey, Contact, Membership
from tidings.services.tenant_profile import get_branding


@dataclass(frozen=True)
class Flow:
    id: str
    title: str
    description: str
    endpoint: str
    completed: bool


async def onboarding_flows(session: AsyncSession, tenant_id: str) -> list[Flow]:
    """The checklist for ``tenant_id``, in the order a new tenant would follow it.

    Raises ``NotFound(tenant_not_found)`` for an unknown tenant.
    """
    branding = await get_branding(session, tenant_id)
    members = (await session.execute(select(func.count()).select_from(Membership)
                                     .where(Membership.tenant_id == tenant_id))).scalar_one()
    has_contact = (await session.execute(select(Contact.id).where(Contact.tenant_id == tenant_id)
                                         .limit(1))).first() is not None
    return [
        Flow("invite_team", "Invite your team",
             "Invite teammates by email and give each a role.",
             "POST /tenants/members/invite/", members > 1),
        Flow("create_api_key", "Create an API key",
             "Create a key for your application; it is shown once.",
             "POST /tenants/api-keys/", await _has_application_key(session, tenant_id)),
        Flow("import_contacts", "Import your contacts",
             "Upload a CSV of contacts or add them one by one.",
             "POST /contacts/bulk-import/", has_contact),
        Flow("set_branding", "Set your branding",
             "Set a custom domain, a logo and the sender of your emails.",
             "PATCH /tenants/branding/", branding.is_set),
    ]


async def _has_application_key(session: AsyncSession, tenant_id: str) -> bool:
    first = (select(ApiKey.id).where(ApiKey.tenant_id == tenant_id)
             .order_by(ApiKey.created_at, ApiKey.id).limit(1).scalar_subquery())
    result = await session.execute(
        select(ApiKey.id).where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None),
                                ApiKey.id != first).limit(1))
    return result.first() is not None
