"""A tenant's DLT content templates (India): the registered body with ``{#var#}`` placeholders,
named by its DLT registration id, which is what a send names as ``dlt_template_id``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import DltTemplate
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.dlt import sender_id_problem, template_problem
from tidings.domain.ids import new_id
from tidings.errors import Conflict, InvalidInput, NotFound

MAX_ID_LENGTH = 40
MAX_CATEGORY_LENGTH = 40


@dataclass(frozen=True)
class TemplateFields:
    """What a create or update sets; on update ``None`` leaves a field unchanged."""

    dlt_template_id: str | None = None
    body: str | None = None
    sender_id: str | None = None
    category: str | None = None


async def create_template(session: AsyncSession, *, tenant_id: str, fields: TemplateFields,
                          now: datetime) -> DltTemplate:
    """Store a template. ``InvalidInput`` for a bad id, body or sender id;
    ``Conflict(duplicate_dlt_template)`` when the tenant already has that DLT id."""
    if not fields.dlt_template_id or fields.body is None:
        raise InvalidInput.for_field("dlt_template_id" if not fields.dlt_template_id else "body",
                                     "is required")
    _check(fields)
    template_id = fields.dlt_template_id.strip()
    await _refuse_duplicate(session, tenant_id, template_id)
    template = DltTemplate(id=new_id(), tenant_id=tenant_id, dlt_template_id=template_id,
                           body=fields.body, sender_id=_clean(fields.sender_id),
                           category=_clean(fields.category), created_at=now, updated_at=now)
    session.add(template)
    await session.flush()
    return template


async def update_template(session: AsyncSession, *, tenant_id: str, template_id: str,
                          fields: TemplateFields, now: datetime) -> DltTemplate:
    """Change a template (same checks as create)."""
    template = await get_template(session, tenant_id, template_id)
    _check(fields)
    if fields.dlt_template_id is not None:
        new_dlt_id = fields.dlt_template_id.strip()
        if new_dlt_id != template.dlt_template_id:
            await _refuse_duplicate(session, tenant_id, new_dlt_id)
        template.dlt_template_id = new_dlt_id
    if fields.body is not None:
        template.body = fields.body
    if fields.sender_id is not None:
        template.sender_id = _clean(fields.sender_id)
    if fields.category is not None:
        template.category = _clean(fields.category)
    template.updated_at = now
    await session.flush()
    return template


async def delete_template(session: AsyncSession, *, tenant_id: str, template_id: str) -> None:
    await session.delete(await get_template(session, tenant_id, template_id))
    await session.flush()


async def get_template(session: AsyncSession, tenant_id: str, template_id: str) -> DltTemplate:
    """The tenant's template by its own id; ``NotFound(dlt_template_not_found)`` otherwise."""
    template = await get_owned(session, DltTemplate, tenant_id, template_id)
    if template is None:
        raise NotFound(f"DLT template {template_id} not found", "dlt_template_not_found")
    return template


async def find_by_dlt_id(session: AsyncSession, tenant_id: str,
                         dlt_template_id: str) -> DltTemplate | None:
    """The tenant's template registered as ``dlt_template_id``, if stored."""
    return (await session.execute(owned_by(DltTemplate, tenant_id).where(
        DltTemplate.dlt_template_id == dlt_template_id))).scalar_one_or_none()


def list_templates_query(tenant_id: str) -> Any:
    return owned_by(DltTemplate, tenant_id).order_by(DltTemplate.id)


def _check(fields: TemplateFields) -> None:
    if fields.dlt_template_id is not None:
        value = fields.dlt_template_id.strip()
        if not value or len(value) > MAX_ID_LENGTH or not value.isalnum():
            raise InvalidInput.for_field(
                "dlt_template_id", f"must be 1 to {MAX_ID_LENGTH} letters or digits")
    if fields.body is not None:
        problem = template_problem(fields.body)
        if problem:
            raise InvalidInput.for_field("body", problem)
    if fields.sender_id:
        problem = sender_id_problem(fields.sender_id.strip())
        if problem:
            raise InvalidInput.for_field("sender_id", problem)
    if fields.category is not None and len(fields.category.strip()) > MAX_CATEGORY_LENGTH:
        raise InvalidInput.for_field("category", f"must be at most {MAX_CATEGORY_LENGTH} "
                                     "characters")


async def _refuse_duplicate(session: AsyncSession, tenant_id: str, dlt_template_id: str) -> None:
    if await find_by_dlt_id(session, tenant_id, dlt_template_id) is not None:
        raise Conflict(f"DLT template {dlt_template_id} is already stored",
                       "duplicate_dlt_template")


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None
