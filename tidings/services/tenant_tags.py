"""Tags on the tenant itself (``vip``, ``agency:acme``…), for agencies filtering many tenants.

A tag has a name (trimmed, 1 to 64 characters, no control characters, unique per tenant and
compared exactly, so ``VIP`` and ``vip`` are two tags) and an optional ``#rrggbb`` colour
(stored lowercased).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import TenantTag
from tidings.db.repos.listing import fetch_page
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.ids import new_id
from tidings.errors import Conflict, InvalidInput, NotFound

MAX_TAG_LENGTH = 64
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


async def list_tags(session: AsyncSession, tenant_id: str, *, limit: int,
                    offset: int) -> tuple[list[TenantTag], int]:
    """One page of the tenant's tags, by name, and how many it has."""
    query = owned_by(TenantTag, tenant_id).order_by(TenantTag.name, TenantTag.id)
    return await fetch_page(session, query, limit=limit, offset=offset)


def clean_tag_name(name: str) -> str:
    """``name`` trimmed; ``InvalidInput`` when empty, longer than 64 or with control chars."""
    name = name.strip()
    if not name or len(name) > MAX_TAG_LENGTH:
        raise InvalidInput.for_field("name", f"must be 1 to {MAX_TAG_LENGTH} characters")
    if _CONTROL_RE.search(name):
        raise InvalidInput.for_field("name", "must not contain control characters")
    return name


async def create_tag(session: AsyncSession, *, tenant_id: str, name: str, color: str | None,
                     now: datetime) -> TenantTag:
    """A new tag of ``tenant_id``.

    Raises ``InvalidInput`` for a bad name or colour, ``Conflict(duplicate_tag)`` when the
    tenant already has a tag of that name (also when a concurrent request just made it).
    """
    name = clean_tag_name(name)
    if color is not None:
        if not _COLOR_RE.match(color.strip()):
            raise InvalidInput.for_field("color", "must look like #1a2b3c")
        color = color.strip().lower()
    if await _find_by_name(session, tenant_id, name) is not None:
        raise Conflict(f"tag {name!r} already exists", "duplicate_tag")
    tag = TenantTag(id=new_id(), tenant_id=tenant_id, name=name, color=color, created_at=now)
    try:
        async with session.begin_nested():
            session.add(tag)
    except IntegrityError as exc:
        raise Conflict(f"tag {name!r} already exists", "duplicate_tag") from exc
    return tag


async def delete_tag(session: AsyncSession, *, tenant_id: str, tag_id: str) -> None:
    """Delete the tag ``tag_id``; ``NotFound(tag_not_found)`` when absent or another tenant's."""
    tag = await get_owned(session, TenantTag, tenant_id, tag_id)
    if tag is None:
        raise NotFound(f"tag {tag_id} not found", "tag_not_found")
    await session.delete(tag)
    await session.flush()


async def delete_tag_by_name(session: AsyncSession, *, tenant_id: str, name: str) -> None:
    """Delete the tag called ``name`` (trimmed); ``NotFound(tag_not_found)`` when absent."""
    tag = await _find_by_name(session, tenant_id, name.strip())
    if tag is None:
        raise NotFound(f"tag {name.strip()!r} not found", "tag_not_found")
    await session.delete(tag)
    await session.flush()


async def _find_by_name(session: AsyncSession, tenant_id: str, name: str) -> TenantTag | None:
    result = await session.execute(owned_by(TenantTag, tenant_id).where(TenantTag.name == name))
    return result.scalar_one_or_none()

