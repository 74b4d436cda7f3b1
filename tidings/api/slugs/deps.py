"""The slug API's callers: authenticated like the native API, with a permission, and the
tenant's app for the path's slug (``tidings.services.provider_slugs.app_for_slug``: 400 when
the slug is unknown or not installed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header

from tidings.api.deps import DbSession, RuntimeDep, authenticate_caller
from tidings.db.models import ChannelAccount
from tidings.domain.roles import Permission
from tidings.services.auth import Principal
from tidings.services.provider_slugs import app_for_slug


def caller_who_may(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the authenticated caller, refused (403) without ``permission``."""

    async def caller(runtime: RuntimeDep,
                     authorization: Annotated[str | None, Header()] = None,
                     x_tenant_id: Annotated[str | None, Header(alias="X-Tenant-ID")] = None
                     ) -> Principal:
        principal = await authenticate_caller(runtime, authorization, x_tenant_id)
        principal.require(permission)
        return principal

    return caller


Reader = Annotated[Principal, Depends(caller_who_may(Permission.READ))]
Sender = Annotated[Principal, Depends(caller_who_may(Permission.MESSAGES_SEND))]


async def installed_app(slug: str, principal: Reader, session: DbSession) -> ChannelAccount:
    """The reading caller's app for ``slug``."""
    return await app_for_slug(session, principal.tenant_id, slug)


async def sending_app(slug: str, principal: Sender, session: DbSession
                      ) -> tuple[Principal, ChannelAccount]:
    """The caller, who may send messages, and their app for ``slug``."""
    return principal, await app_for_slug(session, principal.tenant_id, slug)


InstalledApp = Annotated[ChannelAccount, Depends(installed_app)]
SendingApp = Annotated[tuple[Principal, ChannelAccount], Depends(sending_app)]
