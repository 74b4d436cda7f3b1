"""Tenants' API keys: created for a role and mode, shown once, stored as SHA-256, revocable.

Who may make or revoke which key is ``domain.roles.may_issue_key``; the operator's CLI
(``create_api_key``, ``revoke_api_key`` without an ``actor_role``) is not bound by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import ApiKey
from tidings.db.repos.listing import fetch_page
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.ids import new_id
from tidings.domain.keys import DISPLAY_PREFIX_LENGTH, KeyMode, new_api_key, sha256_hex
from tidings.domain.roles import Role, may_issue_key
from tidings.errors import Forbidden, InvalidInput, NotFound


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


def _tenant_keys(tenant_id: str) -> Select[ApiKey]:
    """The tenant's keys, revoked ones included, oldest first."""
    return owned_by(ApiKey, tenant_id).order_by(ApiKey.created_at, ApiKey.id)


async def list_api_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    result = await session.execute(_tenant_keys(tenant_id))
    return list(result.scalars())


async def revoke_api_key(session: AsyncSession, *, tenant_id: str, key_id: str, now: datetime,
                         actor_role: Role | None = None) -> ApiKey:
    """Revoke a key of ``tenant_id`` (idempotent) and return it.

    ``actor_role`` is the calling member's or key's role; None is the operator (the CLI).
    Raises ``NotFound(api_key_not_found)`` for an absent or another tenant's key, then
    ``Forbidden(permission_denied)`` when ``actor_role`` may not issue a key of that role.
    """
    record = await get_owned(session, ApiKey, tenant_id, key_id)
    if record is None:
        raise NotFound(f"API key {key_id} not found", "api_key_not_found")
    if actor_role is not None and not may_issue_key(actor_role, Role(record.role)):
        raise Forbidden(f"role {actor_role.value} may not revoke a {record.role} key",
                        "permission_denied")
    if record.revoked_at is None:
        record.revoked_at = now
    await session.flush()
    return record


async def find_live_key(session: AsyncSession, secret: str) -> ApiKey | None:
    """The unrevoked key whose hash matches ``secret``, if any."""
    result = await session.execute(
        select(ApiKey).where(ApiKey.key_hash == sha256_hex(secret), ApiKey.revoked_at.is_(None)))
    return result.scalar_one_or_none()


async def issue_api_key(session: AsyncSession, *, tenant_id: str, creator_role: Role, role: Role,
                        mode: KeyMode, name: str, created_by: str | None,
                        now: datetime) -> IssuedKey:
    """``create_api_key`` on behalf of a caller with ``creator_role``: ``Forbidden
    (permission_denied)`` when that role may not issue a ``role`` key; ``InvalidInput`` for a
    name that is not 1 to 100 characters. ``created_by`` is the calling user's id, if a user."""
    if not may_issue_key(creator_role, role):
        raise Forbidden(f"role {creator_role.value} may not create a {role.value} key",
                        "permission_denied")
    return await create_api_key(session, tenant_id=tenant_id, role=role, mode=mode, name=name,
                                created_by=created_by, now=now)


async def list_api_keys_page(session: AsyncSession, tenant_id: str, *, limit: int,
                             offset: int) -> tuple[list[ApiKey], int]:
    """One page of the tenant's keys, revoked ones included, oldest first, and their count."""
    return await fetch_page(session, _tenant_keys(tenant_id), limit=limit, offset=offset)
