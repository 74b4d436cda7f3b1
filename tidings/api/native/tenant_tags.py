"""``/tenants/tenant-tags/…``: tags on the tenant itself."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.db.models import TenantTag
from tidings.domain.roles import Permission
from tidings.services import tenant_tags
from tidings.services.auth import Principal

router = APIRouter(prefix="/tenants", tags=["tenants"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}})

TagsWriter = Annotated[Principal, Depends(requires(Permission.TAGS_WRITE))]


class TagBody(BaseModel):
    id: str
    name: str
    color: str | None
    created_at: datetime


class TagCreate(RequestBody):
    name: str = Field(min_length=1, max_length=tenant_tags.MAX_TAG_LENGTH)
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$",
                              description="A colour as #rrggbb.")


def _tag_body(tag: TenantTag) -> TagBody:
    return TagBody(id=tag.id, name=tag.name, color=tag.color, created_at=tag.created_at)


@router.get("/tenant-tags/", response_model=Page[TagBody], summary="The tenant's tags, by name")
async def list_tags(caller: Reader, session: DbSession, page: Pagination) -> Page[TagBody]:
    found, total = await tenant_tags.list_tags(session, caller.tenant_id, limit=page.limit,
                                               offset=page.offset)
    return page.page([_tag_body(t) for t in found], total)


@router.post("/tenant-tags/", response_model=TagBody, status_code=201,
             summary="Create a tag (tags.write)", responses={409: {"model": ErrorBody}})
async def create_tag(body: TagCreate, caller: TagsWriter, session: DbSession,
                     runtime: RuntimeDep) -> TagBody:
    tag = await tenant_tags.create_tag(session, tenant_id=caller.tenant_id, name=body.name,
                                       color=body.color, now=runtime.clock())
    return _tag_body(tag)


@router.delete("/tenant-tags/", status_code=204, response_class=Response,
               summary="Delete the tag named ?name= (tags.write)",
               responses={404: {"model": ErrorBody}})
async def delete_tag_by_name(
        name: Annotated[str, Query(min_length=1, max_length=tenant_tags.MAX_TAG_LENGTH)],
        caller: TagsWriter, session: DbSession) -> Response:
    await tenant_tags.delete_tag_by_name(session, tenant_id=caller.tenant_id, name=name)
    return Response(status_code=204)


@router.delete("/tenant-tags/{tag_id}/", status_code=204, response_class=Response,
               summary="Delete a tag by id (tags.write)", responses={404: {"model": ErrorBody}})
async def delete_tag(tag_id: str, caller: TagsWriter, session: DbSession) -> Response:
    await tenant_tags.delete_tag(session, tenant_id=caller.tenant_id, tag_id=tag_id)
    return Response(status_code=204)
