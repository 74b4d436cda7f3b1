"""``/sms/v1/templates/…``: the tenant's DLT content templates (India)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.db.models import DltTemplate
from tidings.db.repos.listing import fetch_page
from tidings.domain.roles import Permission
from tidings.runtime import Runtime
from tidings.services import dlt_templates
from tidings.services.auth import Principal
from tidings.services.dlt_templates import TemplateFields

router = APIRouter(prefix="/sms/v1/templates", tags=["sms templates"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}})

AppsManager = Annotated[Principal, Depends(requires(Permission.APPS_MANAGE))]


class TemplateBody(BaseModel):
    id: str
    dlt_template_id: str
    body: str
    sender_id: str | None
    category: str | None
    created_at: datetime
    updated_at: datetime


class TemplateCreate(RequestBody):
    dlt_template_id: str = Field(min_length=1, max_length=40,
                                 description="The DLT registration id; sends name this.")
    body: str = Field(min_length=1, max_length=2000,
                      description="The registered text with {#var#} placeholders.")
    sender_id: str | None = Field(default=None, max_length=6)
    category: str | None = Field(default=None, max_length=40)


class TemplateUpdate(RequestBody):
    dlt_template_id: str | None = Field(default=None, min_length=1, max_length=40)
    body: str | None = Field(default=None, min_length=1, max_length=2000)
    sender_id: str | None = Field(default=None, max_length=6)
    category: str | None = Field(default=None, max_length=40)


def _view(template: DltTemplate) -> TemplateBody:
    return TemplateBody(id=template.id, dlt_template_id=template.dlt_template_id,
                        body=template.body, sender_id=template.sender_id,
                        category=template.category, created_at=template.created_at,
                        updated_at=template.updated_at)


@router.get("/", response_model=Page[TemplateBody], summary="List DLT templates")
async def list_templates(principal: Reader, session: DbSession,
                         page: Pagination) -> Page[TemplateBody]:
    items, count = await fetch_page(session,
                                    dlt_templates.list_templates_query(principal.tenant_id),
                                    limit=page.limit, offset=page.offset)
    return page.page([_view(item) for item in items], count)


@router.post("/", status_code=201, response_model=TemplateBody,
             summary="Store a DLT template (apps.manage)")
async def create_template(body: TemplateCreate, principal: AppsManager, session: DbSession,
                          runtime: RuntimeDep) -> TemplateBody:
    template = await dlt_templates.create_template(
        session, tenant_id=principal.tenant_id, fields=TemplateFields(**body.model_dump()),
        now=runtime.clock())
    await _commit_and_forget_send_plans(session, runtime)
    return _view(template)


@router.get("/{template_id}/", response_model=TemplateBody, summary="One DLT template")
async def get_template(template_id: str, principal: Reader,
                       session: DbSession) -> TemplateBody:
    return _view(await dlt_templates.get_template(session, principal.tenant_id, template_id))


@router.put("/{template_id}/", response_model=TemplateBody,
            summary="Change a DLT template (apps.manage)")
async def update_template(template_id: str, body: TemplateUpdate, principal: AppsManager,
                          session: DbSession, runtime: RuntimeDep) -> TemplateBody:
    template = await dlt_templates.update_template(
        session, tenant_id=principal.tenant_id, template_id=template_id,
        fields=TemplateFields(**body.model_dump(exclude_unset=True)), now=runtime.clock())
    await _commit_and_forget_send_plans(session, runtime)
    return _view(template)


@router.delete("/{template_id}/", status_code=204, response_class=Response,
               summary="Delete a DLT template (apps.manage)")
async def delete_template(template_id: str, principal: AppsManager,
                          session: DbSession, runtime: RuntimeDep) -> Response:
    await dlt_templates.delete_template(session, tenant_id=principal.tenant_id,
                                        template_id=template_id)
    await _commit_and_forget_send_plans(session, runtime)
    return Response(status_code=204)


async def _commit_and_forget_send_plans(session: AsyncSession, runtime: Runtime) -> None:
    """Commit the change, then drop this node's cached send plans (``SendPreparer``), which
    hold template bodies: the next send through this node sees the change at once (other
    nodes within ``TIDINGS_AUTH_CACHE_SECONDS``). Committing first keeps a concurrent send
    from caching the old body again."""
    await session.commit()
    runtime.send_cache.clear()
