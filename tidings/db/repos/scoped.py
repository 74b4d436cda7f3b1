"""Tenant-scoped queries: every read of tenant data starts here, so another tenant's id is
simply not found."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


class TenantOwned(Protocol):
    id: Any
    tenant_id: Any


ModelT = TypeVar("ModelT", bound=TenantOwned)


def owned_by(model: type[ModelT], tenant_id: str) -> Select[ModelT]:
    """``SELECT model WHERE tenant_id = :tenant_id``, to refine further."""
    column: InstrumentedAttribute[str] = model.tenant_id
    return select(model).where(column == tenant_id)


async def get_owned(session: AsyncSession, model: type[ModelT], tenant_id: str,
                    row_id: str) -> ModelT | None:
    """The row with ``row_id`` if it belongs to ``tenant_id``, else None."""
    column: InstrumentedAttribute[str] = model.id
    result = await session.execute(owned_by(model, tenant_id).where(column == row_id))
    return result.scalar_one_or_none()
