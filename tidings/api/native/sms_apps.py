"""``/sms/v1/apps/…``: a tenant's SMS apps (installed provider accounts).

Credentials go in (``provider_credentials``) and never come out: responses list which
credential keys are set (``provider_credentials_set``) and mask nothing further.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.db.models import ChannelAccount
from tidings.db.repos.listing import fetch_page
from tidings.domain.roles import Permission
from tidings.runtime import Runtime
from tidings.services import sms_apps
from tidings.services.android.access import ANDROID_PROVIDER, registration_token
from tidings.services.auth import Principal
from tidings.services.sms_apps import SmsAppFields

router = APIRouter(prefix="/sms/v1/apps", tags=["sms apps"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}, 404: {"model": ErrorBody}})

AppsManager = Annotated[Principal, Depends(requires(Permission.APPS_MANAGE))]

_CREDENTIALS_HELP = ("Per provider: TWILIO account_sid + auth_token; MSG91 auth_key; FAST2SMS "
                     "api_key; INFOBIP api_key (base_url in provider_config); VONAGE api_key + "
                     "api_secret (+ signature_secret); UNIFONIC app_sid; TAQNYAT bearer_token; "
                     "MSEGAT user_name + api_key; FOURJAWALY app_key + app_secret; CEQUENS "
                     "api_token (or user_name + api_key); MORA api_key + username; SIMULATOR "
                     "and ANDROID none. Encrypted at rest, never returned.")


class SmsAppBody(BaseModel):
    id: str
    name: str
    provider: str
    sender_id: str | None
    dlt_entity_id: str | None
    provider_credentials_set: list[str] = Field(description="Which credential keys are set.")
    provider_config: dict[str, Any]
    rate_limit: str
    daily_limit: int | None
    price_per_segment_minor: int | None
    is_default: bool
    service_profile_id: str | None = Field(description=(
        "The service profile its inbound messages and delivery receipts are called back to."))
    p2p_enabled: bool = Field(description=(
        "Inbound SMS to a full number (9+ digits) are forwarded as SMS to that number."))
    daily_sent: int
    daily_segments: int
    inbound_webhook_url: str
    dlr_webhook_url: str
    registration_token: str | None = Field(default=None, description=(
        "ANDROID apps: phones register with Authorization: Bearer <this> at "
        "POST /mobile/v1/device (null for other providers)."))
    created_at: datetime
    updated_at: datetime


class SmsAppCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    provider: str = Field(description="TWILIO, MSG91, FAST2SMS, INFOBIP, VONAGE, UNIFONIC, "
                          "TAQNYAT, MSEGAT, FOURJAWALY, CEQUENS, MORA, SIMULATOR or ANDROID.")
    sender_id: str | None = Field(default=None, max_length=32)
    dlt_entity_id: str | None = Field(default=None, max_length=40)
    provider_credentials: dict[str, Any] = Field(default_factory=dict,
                                                 description=_CREDENTIALS_HELP)
    provider_config: dict[str, Any] = Field(default_factory=dict)
    rate_limit: str | None = Field(default=None, description="e.g. 100/min (default "
                                   "TIDINGS_SMS_RATE_LIMIT).")
    daily_limit: int | None = Field(default=None, ge=1)
    price_per_segment_minor: int | None = Field(default=None, ge=0, description=(
        "Debited from the tenant wallet per segment sent (live keys); null for free."))
    is_default: bool = False
    service_profile_id: str | None = Field(default=None, description=(
        "One of the tenant's service profiles (/sms/v1/service-profiles/), or null for none."))
    p2p_enabled: bool = Field(default=False, description=(
        "Forward inbound SMS addressed to a full number (9+ digits) as SMS to that number "
        "instead of calling back."))


class SmsAppUpdate(RequestBody):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    provider: str | None = None
    sender_id: str | None = Field(default=None, max_length=32)
    dlt_entity_id: str | None = Field(default=None, max_length=40)
    provider_credentials: dict[str, Any] | None = Field(default=None, description=(
        "Replaces every credential. " + _CREDENTIALS_HELP))
    provider_config: dict[str, Any] | None = None
    rate_limit: str | None = None
    daily_limit: int | None = Field(default=None, ge=1)
    price_per_segment_minor: int | None = Field(default=None, ge=0)
    is_default: bool | None = None
    service_profile_id: str | None = Field(default=None, description="null clears it.")
    p2p_enabled: bool | None = None


def _view(account: ChannelAccount, runtime: Runtime) -> SmsAppBody:
    inbound, dlr = sms_apps.webhook_urls(account, runtime.settings.public_url)
    registration = (registration_token(account, runtime.settings.require_secret_key())
                    if account.provider == ANDROID_PROVIDER else None)
    return SmsAppBody(
        id=account.id, name=account.name, provider=account.provider,
        sender_id=account.sender_id, dlt_entity_id=account.dlt_entity_id,
        provider_credentials_set=list(account.credential_keys),
        provider_config=account.config, rate_limit=account.rate_limit,
        daily_limit=account.daily_limit, price_per_segment_minor=account.price_per_segment_minor,
        is_default=account.is_default, service_profile_id=account.service_profile_id,
        p2p_enabled=account.p2p_enabled, daily_sent=account.daily_sent,
        daily_segments=account.daily_segments, inbound_webhook_url=inbound,
        dlr_webhook_url=dlr, registration_token=registration, created_at=account.created_at,
        updated_at=account.updated_at)


@router.get("/", response_model=Page[SmsAppBody], summary="List the tenant's SMS apps")
async def list_apps(principal: Reader, session: DbSession, runtime: RuntimeDep,
                    page: Pagination) -> Page[SmsAppBody]:
    items, count = await fetch_page(session, sms_apps.list_sms_apps_query(principal.tenant_id),
                                    limit=page.limit, offset=page.offset)
    return page.page([_view(item, runtime) for item in items], count)


@router.post("/", status_code=201, response_model=SmsAppBody,
             summary="Install a provider account as an SMS app (apps.manage)")
async def create_app(body: SmsAppCreate, principal: AppsManager, session: DbSession,
                     runtime: RuntimeDep) -> SmsAppBody:
    account = await sms_apps.create_sms_app(
        session, runtime.secret_box, tenant_id=principal.tenant_id,
        fields=SmsAppFields(**body.model_dump()),
        default_rate_limit=runtime.settings.sms_rate_limit, now=runtime.clock())
    await _commit_and_forget_send_plans(session, runtime)
    return _view(account, runtime)


@router.get("/{app_id}/", response_model=SmsAppBody, summary="One SMS app")
async def get_app(app_id: str, principal: Reader, session: DbSession,
                  runtime: RuntimeDep) -> SmsAppBody:
    account = await sms_apps.get_sms_app(session, principal.tenant_id, app_id)
    return _view(account, runtime)


@router.put("/{app_id}/", response_model=SmsAppBody,
            summary="Change an SMS app; new credentials replace the old (apps.manage)")
async def update_app(app_id: str, body: SmsAppUpdate, principal: AppsManager,
                     session: DbSession, runtime: RuntimeDep) -> SmsAppBody:
    given = body.model_dump(exclude_unset=True)
    unset = frozenset(name for name, value in given.items() if value is None)
    account = await sms_apps.update_sms_app(
        session, runtime.secret_box, tenant_id=principal.tenant_id, app_id=app_id,
        fields=SmsAppFields(**{k: v for k, v in given.items() if v is not None}, unset=unset),
        now=runtime.clock())
    await _commit_and_forget_send_plans(session, runtime)
    return _view(account, runtime)


@router.delete("/{app_id}/", status_code=204, response_class=Response,
               summary="Retire an SMS app; its messages keep their history (apps.manage)")
async def delete_app(app_id: str, principal: AppsManager, session: DbSession,
                     runtime: RuntimeDep) -> Response:
    await sms_apps.delete_sms_app(session, tenant_id=principal.tenant_id, app_id=app_id,
                                  now=runtime.clock())
    await _commit_and_forget_send_plans(session, runtime)
    return Response(status_code=204)


async def _commit_and_forget_send_plans(session: AsyncSession, runtime: Runtime) -> None:
    """Commit the change, then drop this node's cached send plans (``SendPreparer``), which
    hold apps: the next send through this node sees the change at once (other nodes within
    ``TIDINGS_AUTH_CACHE_SECONDS``). Committing first keeps a concurrent send from caching
    the old app again."""
    await session.commit()
    runtime.send_cache.clear()
