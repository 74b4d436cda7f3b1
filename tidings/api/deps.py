"""Request dependencies: the runtime, the request's unit of work, and the authenticated caller.

``DbSession`` commits when the endpoint returns without error and before the response is sent, so
a 2xx means the change is on disk; any error rolls the whole request back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.domain.keys import sha256_hex
from tidings.domain.roles import Permission
from tidings.errors import RateLimited, Unauthorized
from tidings.pipeline.throttle import retry_after_seconds
from tidings.runtime import Runtime
from tidings.services.auth import Principal, authenticate


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a sync dependency in a worker thread, on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_credential(authorization: str | None) -> str:
    scheme, _, credential = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send Authorization: Bearer <access token or API key>",
                           "not_authenticated")
    return credential.strip()


async def get_principal(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header(alias="X-Tenant-ID")] = None,
) -> Principal:
    """The caller, after authentication and the tenant's API rate limit (429 when spent)."""
    return await authenticate_caller(runtime, authorization, x_tenant_id)


async def authenticate_caller(runtime: Runtime, authorization: str | None,
                              x_tenant_id: str | None) -> Principal:
    """``get_principal`` for endpoints that read their request themselves (the send path).

    Authentication reads in its own short read-only session, so that on SQLite it never queues
    behind the writer and the request's own unit of work stays untouched until it writes. A
    successful answer is cached for ``TIDINGS_AUTH_CACHE_SECONDS`` (access tokens are checked
    for expiry by the cache's short life and their own ``exp``; revocation takes that long).
    """
    credential = bearer_credential(authorization)
    cache_key = (sha256_hex(credential), x_tenant_id or None)
    principal = runtime.auth_cache.get(cache_key)
    if principal is None:
        async with runtime.read_sessions() as reads:
            principal = await authenticate(reads, runtime.tokens, credential,
                                           x_tenant_id or None)
        runtime.auth_cache.put(cache_key, principal)
    await take_api_rate(runtime, principal.tenant_id)
    return principal


async def take_api_rate(runtime: Runtime, tenant_id: str) -> None:
    """Count one request against the tenant's API rate limit; ``RateLimited`` (429) when it
    is spent."""
    wait = await runtime.api_limiter.take(tenant_id)
    if wait is not None:
        raise RateLimited(f"rate limit of {runtime.settings.api_rate_limit} exceeded",
                          retry_after_seconds(wait))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def requires(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, if their role holds ``permission`` (else 403)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        return principal

    return dependency


Reader = Annotated[Principal, Depends(requires(Permission.READ))]
