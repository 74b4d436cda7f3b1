"""``/tenants/api-keys/…``: the tenant's API keys, shown once when made, revocable.
Who may make or revoke which key: ``tidings.services.api_keys``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.db.models import ApiKey
from tidings.domain.keys import KeyMode
from tidings.domain.roles import Permission, Role
from tidings.services import api_keys
from tidings.services.auth import Principal

router = APIRouter(prefix="/tenants", tags=["tenants"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}})

KeysManager = Annotated[Principal, Depends(requires(Permission.API_KEYS_MANAGE))]


class ApiKeyBody(BaseModel):
    id: str
    name: str
    role: Role
    mode: KeyMode
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    revoked_at: datetime | None


class NewApiKeyBody(ApiKeyBody):
    api_key: str = Field(description="The key itself: shown once, never again.")


class ApiKeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    mode: KeyMode = Field(description="'live', or 'test' for sandbox keys (jc_test_…).")


def _key_fields(key: ApiKey) -> dict[str, object]:
    return {"id": key.id, "name": key.name, "role": key.role, "mode": key.mode,
            "prefix": key.prefix, "created_at": key.created_at, "revoked_at": key.revoked_at}


@router.get("/api-keys/", response_model=Page[ApiKeyBody],
            summary="The tenant's API keys, revoked ones included (never the keys themselves)")
async def list_keys(caller: Reader, session: DbSession, page: Pagination) -> Page[ApiKeyBody]:
    found, total = await api_keys.list_api_keys_page(session, caller.tenant_id,
                                                     limit=page.limit, offset=page.offset)
    return page.page([ApiKeyBody.model_validate(_key_fields(k)) for k in found], total)


@router.post("/api-keys/", response_model=NewApiKeyBody, status_code=201,
             summary="Create an API key, shown once (api_keys.manage; no role above your own)")
async def create_key(body: ApiKeyCreate, caller: KeysManager, session: DbSession,
                     runtime: RuntimeDep) -> NewApiKeyBody:
    issued = await api_keys.issue_api_key(
        session, tenant_id=caller.tenant_id, creator_role=caller.role, role=body.role,
        mode=body.mode, name=body.name, created_by=caller.user_id, now=runtime.clock())
    return NewApiKeyBody.model_validate({**_key_fields(issued.record), "api_key": issued.secret})


@router.delete("/api-keys/{key_id}/", status_code=204, response_class=Response,
               summary="Revoke an API key (api_keys.manage); it stops working at once",
               responses={404: {"model": ErrorBody}})
async def revoke_key(key_id: str, caller: KeysManager, session: DbSession,
                     runtime: RuntimeDep) -> Response:
    await api_keys.revoke_api_key(session, tenant_id=caller.tenant_id, actor_role=caller.role,
                                  key_id=key_id, now=runtime.clock())
    runtime.auth_cache.clear()
    return Response(status_code=204)
