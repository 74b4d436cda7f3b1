"""One page of a query's rows plus the total count, for the ``limit``/``offset`` lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession


async def count_rows(session: AsyncSession, query: Select[Any]) -> int:
    """How many rows ``query`` yields (its ordering is dropped for the count)."""
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    return int((await session.execute(counted)).scalar_one())


async def fetch_page(session: AsyncSession, query: Select[Any], *, limit: int,
                     offset: int) -> tuple[list[Any], int]:
    """``(items, total)``: rows ``offset .. offset+limit`` of the one-entity ``query`` and the
    count of all its rows. ``query`` must be ordered by something unique, so that pages neither
    overlap nor skip rows."""
    total = await count_rows(session, query)
    result = await session.execute(query.limit(limit).offset(offset))
    return list(result.scalars()), total
