"""``/sms/v1/service-profiles/…``: where SMS apps' inbound messages and delivery receipts are
called back, signed with the profile's ``api_secret``.

The secret goes in and never comes out (``has_api_secret`` says whether one is set). Rules:
``tidings.services.service_profiles``; an app picks its profile with ``service_profile_id``
(``/sms/v1/apps/``). Changing anything needs ``apps.manage``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.db.models import ServiceProfile
from tidings.domain.roles import Permission
from tidings.services import service_profiles
from tidings.services.auth import Principal
from tidings.services.service_profiles import KEEP, PROFILE_EVENTS, ProfileFields

router = APIRouter(prefix="/sms/v1/service-profiles", tags=["service profiles"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}, 404: {"model": ErrorBody}})

ProfilesManager = Annotated[Principal, Depends(requires(Permission.APPS_MANAGE))]

_EVENTS_HELP = f"Some of, each once: {', '.join(PROFILE_EVENTS)}."
_SECRET_HELP = (f"Signs the callbacks (JWT), {service_profiles.API_SECRET_MIN} to "
                f"{service_profiles.API_SECRET_MAX} characters. Write-only: never returned.")


class ServiceProfileBody(BaseModel):
    id: str
    name: str
    callback_url: str
    events: list[str]
    has_api_secret: bool = Field(description="Whether an api_secret is set (never shown).")
    created_at: datetime
    updated_at: datetime


class ServiceProfileCreate(RequestBody):
    name: str = Field(min_length=1, max_length=service_profiles.NAME_MAX)
    callback_url: str = Field(max_length=2048, description="An http(s) URL.")
    events: list[str] = Field(default_factory=lambda: list(PROFILE_EVENTS),
                              description=_EVENTS_HELP + " Default: all.")
    api_secret: str | None = Field(default=None, description=_SECRET_HELP)


class ServiceProfileReplace(RequestBody):
    name: str = Field(min_length=1, max_length=service_profiles.NAME_MAX)
    callback_url: str = Field(max_length=2048, description="An http(s) URL.")
    events: list[str] = Field(description=_EVENTS_HELP)
    api_secret: str | None = Field(default=None, description=(
        _SECRET_HELP + " Left out: the stored one stays; null: removed; a string: replaces."))


def _view(profile: ServiceProfile) -> ServiceProfileBody:
    return ServiceProfileBody(
        id=profile.id, name=profile.name, callback_url=profile.callback_url,
        events=profile.events, has_api_secret=profile.api_secret is not None,
        created_at=profile.created_at, updated_at=profile.updated_at)


def _fields(body: ServiceProfileCreate | ServiceProfileReplace) -> ProfileFields:
    return ProfileFields(name=body.name, callback_url=body.callback_url, events=body.events)


@router.get("/", response_model=Page[ServiceProfileBody],
            summary="The tenant's service profiles (never their secrets)")
async def list_profiles(caller: Reader, session: DbSession,
                        page: Pagination) -> Page[ServiceProfileBody]:
    found, total = await service_profiles.list_profiles_page(
        session, caller.tenant_id, limit=page.limit, offset=page.offset)
    return page.page([_view(profile) for profile in found], total)


@router.post("/", response_model=ServiceProfileBody, status_code=201,
             summary="Create a service profile (apps.manage)")
async def create_profile(body: ServiceProfileCreate, caller: ProfilesManager,
                         session: DbSession, runtime: RuntimeDep) -> ServiceProfileBody:
    profile = await service_profiles.create_profile(
        session, runtime.secret_box, tenant_id=caller.tenant_id, fields=_fields(body),
        api_secret=body.api_secret,
        allow_private=runtime.settings.callback_allow_private_networks, now=runtime.clock())
    return _view(profile)


@router.get("/{profile_id}/", response_model=ServiceProfileBody, summary="One service profile")
async def get_profile(profile_id: str, caller: Reader,
                      session: DbSession) -> ServiceProfileBody:
    return _view(await service_profiles.get_profile(session, caller.tenant_id, profile_id))


@router.put("/{profile_id}/", response_model=ServiceProfileBody,
            summary="Replace a service profile; api_secret left out stays (apps.manage)")
async def replace_profile(profile_id: str, body: ServiceProfileReplace,
                          caller: ProfilesManager, session: DbSession,
                          runtime: RuntimeDep) -> ServiceProfileBody:
    profile = await service_profiles.replace_profile(
        session, runtime.secret_box, tenant_id=caller.tenant_id, profile_id=profile_id,
        fields=_fields(body),
        api_secret=body.api_secret if "api_secret" in body.model_fields_set else KEEP,
        allow_private=runtime.settings.callback_allow_private_networks, now=runtime.clock())
    return _view(profile)


@router.delete("/{profile_id}/", status_code=204, response_class=Response,
               summary="Delete a service profile; its apps are left without one (apps.manage)")
async def delete_profile(profile_id: str, caller: ProfilesManager,
                         session: DbSession) -> Response:
    await service_profiles.delete_profile(session, caller.tenant_id, profile_id)
    return Response(status_code=204)
