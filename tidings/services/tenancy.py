"""Tenants, users and memberships: creating a tenant with its owner, adding users, looking up
who may act in which tenant."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Membership, Tenant, User, Wallet
from tidings.domain.ids import new_id
from tidings.domain.passwords import hash_password, password_problem
from tidings.domain.phone import is_region
from tidings.domain.roles import Role
from tidings.errors import Conflict, InvalidInput, NotFound

ACTIVE = "active"
PENDING = "pending"
MAX_TENANT_NAME_LENGTH = 200
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    owner: User


def checked_tenant_name(value: str) -> str:
    """``value`` trimmed, if it can name a tenant; ``ValueError`` says why not."""
    name = value.strip()
    if not name or len(name) > MAX_TENANT_NAME_LENGTH:
        raise ValueError(f"must be 1 to {MAX_TENANT_NAME_LENGTH} characters")
    if CONTROL_CHARACTERS.search(name):
        raise ValueError("must not contain control characters")
    return name


def checked_region(value: str) -> str:
    """``value`` as an uppercase region phonenumbers knows; ``ValueError`` says why not."""
    region = value.strip().upper()
    if len(region) != 2 or not is_region(region):
        raise ValueError(f"unknown region {value!r}: use an ISO 3166-1 alpha-2 code such as 'GB'")
    return region


def normalise_email(email: str) -> str:
    return email.strip().lower()


def valid_email(text: str, field: str = "email") -> str:
    """``text`` as a syntactically valid address, normalised (lowercased) the way users are
    stored; ``InvalidInput`` naming ``field`` otherwise. Nothing is looked up in DNS."""
    try:
        checked = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput.for_field(field, str(exc)) from exc
    return normalise_email(checked.normalized)


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == normalise_email(email)))
    return result.scalar_one_or_none()


async def create_user(session: AsyncSession, *, email: str, password: str | None,
                      name: str | None, now: datetime) -> User:
    """A new user; ``InvalidInput`` for a malformed email, ``Conflict(duplicate_email)`` when it
    is taken. No password means invited: the user sets one on accepting."""
    email = valid_email(email)
    if await find_user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {normalise_email(email)} already exists",
                       "duplicate_email")
    password_hash = None
    if password is not None:
        if problem := password_problem(password):
            raise InvalidInput.for_field("password", problem)
        password_hash = await asyncio.to_thread(hash_password, password)
    user = User(id=new_id(), email=normalise_email(email), name=name,
                password_hash=password_hash, created_at=now)
    session.add(user)
    await session.flush()
    return user


async def add_membership(session: AsyncSession, *, tenant_id: str, user_id: str, role: Role,
                         now: datetime, status: str = ACTIVE) -> Membership:
    existing = await session.execute(select(Membership).where(
        Membership.tenant_id == tenant_id, Membership.user_id == user_id))
    if existing.scalar_one_or_none() is not None:
        raise Conflict("the user is already a member of this tenant", "already_member")
    membership = Membership(id=new_id(), tenant_id=tenant_id, user_id=user_id, role=role.value,
                            status=status, created_at=now,
                            accepted_at=now if status == ACTIVE else None)
    session.add(membership)
    await session.flush()
    return membership


async def create_tenant(session: AsyncSession, *, name: str, owner_email: str,
                        owner_password: str, region: str, currency: str,
                        now: datetime) -> NewTenant:
    """A tenant, its owner (a new user), and its empty wallet, in the caller's transaction."""
    try:
        name = checked_tenant_name(name)
    except ValueError as exc:
        raise InvalidInput.for_field("name", str(exc)) from None
    try:
        region = checked_region(region)
    except ValueError as exc:
        raise InvalidInput.for_field("region", str(exc)) from None
    tenant = Tenant(id=new_id(), name=name, default_region=region, created_at=now)
    session.add(tenant)
    await session.flush()
    owner = await create_user(session, email=owner_email, password=owner_password, name=None,
                              now=now)
    await add_membership(session, tenant_id=tenant.id, user_id=owner.id, role=Role.OWNER, now=now)
    session.add(Wallet(tenant_id=tenant.id, currency=currency, balance_minor=0, updated_at=now))
    await session.flush()
    return NewTenant(tenant, owner)


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    """Every tenant, oldest first (an operator's view: the CLI)."""
    result = await session.execute(select(Tenant).order_by(Tenant.created_at, Tenant.id))
    return list(result.scalars())


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found", "tenant_not_found")
    return tenant


async def count_tenants(session: AsyncSession) -> int:
    result = await session.execute(select(Tenant.id).limit(1))
    return len(result.all())


async def active_membership(session: AsyncSession, user_id: str,
                            tenant_id: str | None) -> Membership | None:
    """The user's active membership in ``tenant_id``, or in their first tenant when None."""
    query = select(Membership).where(Membership.user_id == user_id, Membership.status == ACTIVE)
    if tenant_id is not None:
        query = query.where(Membership.tenant_id == tenant_id)
    result = await session.execute(query.order_by(Membership.created_at, Membership.id).limit(1))
    return result.scalar_one_or_none()
