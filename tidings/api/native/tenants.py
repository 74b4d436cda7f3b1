"""``/tenants/…``: the caller's tenant — roles, onboarding checklist, branding, settings, wallet
and WhatsApp account info here; members and invitations, tags and API keys in their own modules
(``tenant_members``, ``tenant_tags``, ``tenant_api_keys``). Everything acts on the caller's own
tenant (``principal.tenant_id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, Reader, requires
from tidings.api.schemas import ErrorBody, RequestBody
from tidings.domain.roles import ROLE_DESCRIPTIONS, ROLE_PERMISSIONS, Permission, Role
from tidings.services import onboarding, tenant_profile, wallet
from tidings.services.auth import Principal
from tidings.services.tenancy import MAX_TENANT_NAME_LENGTH
from tidings.services.tenant_profile import Branding

router = APIRouter(prefix="/tenants", tags=["tenants"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

SettingsWriter = Annotated[Principal, Depends(requires(Permission.SETTINGS_WRITE))]


class RoleBody(BaseModel):
    role: Role
    description: str
    permissions: list[str]


@router.get("/roles/", response_model=list[RoleBody], summary="The roles and what each may do")
async def list_roles(_caller: Reader) -> list[RoleBody]:
    return [RoleBody(role=role, description=ROLE_DESCRIPTIONS[role],
                     permissions=sorted(p.value for p in ROLE_PERMISSIONS[role]))
            for role in Role]


class FlowBody(BaseModel):
    id: str
    title: str
    description: str
    endpoint: str = Field(description="The method and path that completes the step.")
    completed: bool


@router.get("/onboarding-options/", response_model=list[FlowBody],
            summary="The tenant's onboarding checklist, computed from its current state")
async def onboarding_options(caller: Reader, session: DbSession) -> list[FlowBody]:
    flows = await onboarding.onboarding_flows(session, caller.tenant_id)
    return [FlowBody(id=f.id, title=f.title, description=f.description, endpoint=f.endpoint,
                     completed=f.completed) for f in flows]


class BrandingBody(BaseModel):
    custom_domain: str | None
    logo_url: str | None
    email_sender: str | None


class BrandingPatch(RequestBody):
    """Only the fields sent change; ``null`` clears a field."""

    custom_domain: str | None = Field(
        default=None, max_length=tenant_profile.MAX_DOMAIN_LENGTH,
        description="A hostname such as messages.example.com (stored lowercased).")
    logo_url: str | None = Field(default=None, max_length=tenant_profile.MAX_URL_LENGTH,
                                 description="An absolute http or https URL.")
    email_sender: str | None = Field(default=None, max_length=tenant_profile.MAX_SENDER_LENGTH,
                                     description="An email address, or 'Name <address>'.")


def _branding_body(branding: Branding) -> BrandingBody:
    return BrandingBody(custom_domain=branding.custom_domain, logo_url=branding.logo_url,
                        email_sender=branding.email_sender)


@router.get("/branding/", response_model=BrandingBody, summary="The tenant's branding")
async def get_branding(caller: Reader, session: DbSession) -> BrandingBody:
    return _branding_body(await tenant_profile.get_branding(session, caller.tenant_id))


@router.patch("/branding/", response_model=BrandingBody,
              summary="Change the custom domain, logo URL or email sender (settings.write)",
              responses={400: {"model": ErrorBody}})
async def patch_branding(body: BrandingPatch, caller: SettingsWriter,
                         session: DbSession) -> BrandingBody:
    branding = await tenant_profile.update_branding(session, caller.tenant_id,
                                                    body.model_dump(exclude_unset=True))
    return _branding_body(branding)


class TenantSettingsBody(BaseModel):
    id: str
    name: str
    default_region: str = Field(description="ISO 3166-1 alpha-2 region used to read local "
                                            "phone numbers, e.g. 'GB'.")
    timezone: str = Field(description="IANA time zone; SMS apps' daily counters reset at its "
                                      "midnight.")
    created_at: datetime


class TenantSettingsPatch(RequestBody):
    """Only the fields sent change; neither may be null."""

    name: str | None = Field(default=None, min_length=1,
                             max_length=MAX_TENANT_NAME_LENGTH)
    default_region: str | None = Field(default=None, min_length=2, max_length=2,
                                       description="ISO 3166-1 alpha-2, e.g. 'IN'.")
    timezone: str | None = Field(default=None, min_length=1, max_length=64,
                                 description="IANA time zone, e.g. 'Asia/Kolkata'.")


async def _settings_body(session: DbSession, tenant_id: str) -> TenantSettingsBody:
    tenant = await tenant_profile.get_settings(session, tenant_id)
    return TenantSettingsBody(id=tenant.id, name=tenant.name,
                              default_region=tenant.default_region, timezone=tenant.timezone,
                              created_at=tenant.created_at)


@router.get("/settings/", response_model=TenantSettingsBody, summary="The tenant's settings")
async def get_settings(caller: Reader, session: DbSession) -> TenantSettingsBody:
    return await _settings_body(session, caller.tenant_id)


@router.patch("/settings/", response_model=TenantSettingsBody,
              summary="Change the tenant's name or default region (settings.write)",
              responses={400: {"model": ErrorBody}})
async def patch_settings(body: TenantSettingsPatch, caller: SettingsWriter,
                         session: DbSession) -> TenantSettingsBody:
    await tenant_profile.update_settings(session, caller.tenant_id,
                                         body.model_dump(exclude_unset=True))
    return await _settings_body(session, caller.tenant_id)


class WalletEntryBody(BaseModel):
    id: str
    amount_minor: int
    balance_after_minor: int
    reason: str
    created_at: datetime


class WalletBody(BaseModel):
    currency: str
    balance_minor: int
    entries: list[WalletEntryBody] = Field(description="The 20 newest ledger entries, newest "
                                                       "first.")


@router.get("/host-wallet/", response_model=WalletBody,
            summary="The tenant's wallet: balance in minor units and recent ledger entries")
async def get_wallet(caller: Reader, session: DbSession) -> WalletBody:
    view = await wallet.get_wallet(session, caller.tenant_id)
    return WalletBody(currency=view.currency, balance_minor=view.balance_minor, entries=[
        WalletEntryBody(id=e.id, amount_minor=e.amount_minor,
                        balance_after_minor=e.balance_after_minor, reason=e.reason,
                        created_at=e.created_at) for e in view.entries])


class WabaBody(BaseModel):
    configured: bool
    accounts: list[dict[str, Any]]


@router.get("/waba-info/", response_model=WabaBody,
            summary="The tenant's WhatsApp Business Accounts (none until WhatsApp exists)")
async def waba_info(caller: Reader, session: DbSession) -> WabaBody:
    info = await tenant_profile.whatsapp_business_info(session, caller.tenant_id)
    return WabaBody(configured=info.configured, accounts=list(info.accounts))

