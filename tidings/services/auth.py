"""Who is calling: password login, token refresh, and turning a bearer credential (an access JWT
or an API key) plus an optional tenant choice into a ``Principal``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import User
from tidings.domain.keys import KeyMode, looks_like_api_key
from tidings.domain.passwords import verify_password
from tidings.domain.roles import Permission, Role, may
from tidings.errors import Forbidden, NotFound, Unauthorized
from tidings.services.api_keys import find_live_key
from tidings.services.tenancy import active_membership, find_user_by_email
from tidings.services.tokens import TokenIssuer, TokenPair

# Verified against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$DOczBRVyywK8B55+0rzJ6w$"
               "1BOAnkEFcAFFxoeHf4lqSKhCTTYdEmk+aDDvSxwjM+U")


@dataclass(frozen=True)
class Principal:
    """The caller of one request: acting in one tenant, with one role."""

    tenant_id: str
    role: Role
    mode: KeyMode
    user_id: str | None = None
    api_key_id: str | None = None

    def require(self, permission: Permission) -> None:
        if not may(self.role, permission):
            raise Forbidden(f"role {self.role.value} may not {permission.value}",
                            "permission_denied")


async def login(session: AsyncSession, tokens: TokenIssuer, email: str,
                password: str) -> TokenPair:
    """A token pair for valid credentials of a user with at least one active membership."""
    user = await find_user_by_email(session, email)
    password_hash = user.password_hash if user and user.password_hash else _DUMMY_HASH
    valid = await asyncio.to_thread(verify_password, password_hash, password)
    if user is None or user.password_hash is None or not valid:
        raise Unauthorized("email or password is wrong", "invalid_credentials")
    if await active_membership(session, user.id, None) is None:
        raise Unauthorized("the user belongs to no tenant", "no_membership")
    return tokens.issue_pair(user.id)


async def refresh(session: AsyncSession, tokens: TokenIssuer, refresh_token: str) -> str:
    """A new access token for a valid refresh token of a user who still exists."""
    user_id = tokens.verify(refresh_token, "refresh")
    if await session.get(User, user_id) is None:
        raise Unauthorized("the user no longer exists", "invalid_token")
    return tokens.issue(user_id, "access")


async def authenticate(session: AsyncSession, tokens: TokenIssuer, credential: str,
                       tenant_id: str | None) -> Principal:
    """The principal for a bearer ``credential``; ``tenant_id`` is the ``X-Tenant-ID`` choice.

    API keys act in their own tenant (naming another tenant answers 404); users act in the chosen
    tenant if they are an active member of it (else 404), or in their first tenant.
    """
    if looks_like_api_key(credential):
        key = await find_live_key(session, credential)
        if key is None:
            raise Unauthorized("unknown or revoked API key", "invalid_api_key")
        if tenant_id is not None and tenant_id != key.tenant_id:
            raise NotFound(f"tenant {tenant_id} not found", "tenant_not_found")
        return Principal(tenant_id=key.tenant_id, role=Role(key.role), mode=KeyMode(key.mode),
                         api_key_id=key.id)
    user_id = tokens.verify(credential, "access")
    membership = await active_membership(session, user_id, tenant_id)
    if membership is None:
        if tenant_id is not None:
            raise NotFound(f"tenant {tenant_id} not found", "tenant_not_found")
        raise Unauthorized("the user belongs to no tenant", "no_membership")
    return Principal(tenant_id=membership.tenant_id, role=Role(membership.role),
                     mode=KeyMode.LIVE, user_id=user_id)
