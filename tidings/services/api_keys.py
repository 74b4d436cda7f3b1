"""Tenants' API keys: created for a role and mode, shown once, stored as SHA-256, revocable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import ApiKey
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.ids import new_id
from tidings.domain.keys import DISPLAY_PREFIX_LENGTH, KeyMode, new_api_key, sha256_hex
from tidings.domain.roles import Role
from tidings.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: ``secret`` is the only time the full key exists outside a client."""

    record: ApiKey
    secret: str


async def create_api_key(session: AsyncSession, *, tenant_id: str, role: Role, mode: KeyMode,
                         name: str, created_by: str | None, now: datetime) -> IssuedKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput.for_field("name", "must be 1 to 100 characters")
    secret = new_api_key(mode)
    record = ApiKey(id=new_id(), tenant_id=tenant_id, name=name, role=role.value,
                    mode=mode.value, prefix=secret[:DISPLAY_PREFIX_LENGTH],
                    key_hash=sha256_hex(secret), created_by=created_by, created_at=now)
    session.add(record)
    await session.flush()
    return IssuedKey(record, secret)


async def list_api_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    result = await session.execute(owned_by(ApiKey, tenant_id).order_by(ApiKey.created_at))
    return list(result.scalars())


async def revoke_api_key(session: AsyncSession, *, tenant_id: str, key_id: str,
                         now: datetime) -> ApiKey:
    """Revoke a key of ``tenant_id`` (idempotent); ``NotFound`` for another tenant's key."""
    record = await get_owned(session, ApiKey, tenant_id, key_id)
    if record is None:
        raise NotFound(f"API key {key_id} not found", "api_key_not_found")
    if record.revoked_at is None:
        record.revoked_at = now
    await session.flush()
    return record


async def find_live_key(session: AsyncSession, secret: str) -> ApiKey | None:
    """The unrevoked key whose hash matches ``secret``, if any."""
    result = await session.execute(
        select(ApiKey).where(ApiKey.key_hash == sha256_hex(secret), ApiKey.revoked_at.is_(None)))
    return result.scalar_one_or_none()
