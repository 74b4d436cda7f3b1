"""``/api/v1/sms-providers/{slug}/…``: a provider's account queries (balance, sender names)
and the bulk CSV template, through the tenant's app for that slug
(``tidings.services.provider_slugs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse

from tidings.api.deps import DbSession, RuntimeDep, authenticate_caller
from tidings.db.models import ChannelAccount
from tidings.domain.roles import Permission
from tidings.errors import ProviderFailed
from tidings.providers.base import AccountContext, Balance, ProviderError, Unsupported
from tidings.providers.registry import sms_provider
from tidings.runtime import Runtime
from tidings.services.provider_slugs import app_for_slug, provider_context

router = APIRouter(prefix="/api/v1/sms-providers/{slug}", tags=["sms providers (by slug)"])

CSV_TEMPLATE = ("mobile,message,sender,datetime\r\n"
                "966501234567,Your order is ready,MyBrand,\r\n")
"""The bulk-send CSV: ``mobile`` and ``message`` required; ``sender`` and ``datetime`` (ISO
8601, in the future to schedule) optional."""


async def installed_app(slug: str, session: DbSession, runtime: RuntimeDep,
                        authorization: Annotated[str | None, Header()] = None,
                        x_tenant_id: Annotated[str | None, Header(alias="X-Tenant-ID")] = None
                        ) -> ChannelAccount:
    """The caller's app for ``slug`` (400 when the slug is unknown or not installed)."""
    principal = await authenticate_caller(runtime, authorization, x_tenant_id)
    principal.require(Permission.READ)
    return await app_for_slug(session, principal.tenant_id, slug)


InstalledApp = Annotated[ChannelAccount, Depends(installed_app)]


@router.get("/balance", summary="The provider account's balance or credits")
async def balance(app: InstalledApp, runtime: RuntimeDep) -> JSONResponse:
    module = sms_provider(app.provider)
    try:
        answer = await module.balance(_context(app, runtime), runtime.http)
    except ProviderError as exc:
        raise ProviderFailed(f"{app.provider} did not give the balance: "
                             f"{exc.failure.code}: {exc.failure.reason}") from None
    if isinstance(answer, Unsupported):
        return JSONResponse({"supported": False})
    assert isinstance(answer, Balance)
    return JSONResponse({"supported": True, "balance": answer.amount,
                         "currency": answer.currency})


@router.get("/sender-names", summary="The sender names the provider approved for the account")
async def sender_names(app: InstalledApp, runtime: RuntimeDep) -> JSONResponse:
    module = sms_provider(app.provider)
    try:
        answer = await module.sender_names(_context(app, runtime), runtime.http)
    except ProviderError as exc:
        raise ProviderFailed(f"{app.provider} did not list the sender names: "
                             f"{exc.failure.code}: {exc.failure.reason}") from None
    names = [] if isinstance(answer, Unsupported) else list(answer)
    return JSONResponse({"sender_names": names, "count": len(names),
                         "supported": not isinstance(answer, Unsupported)})


@router.get("/template/csv", summary="The bulk-send CSV template (header and an example row)",
            response_class=Response)
async def csv_template(slug: str, app: InstalledApp) -> Response:
    return Response(CSV_TEMPLATE, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{slug}-template.csv"'})


def _context(app: ChannelAccount, runtime: Runtime) -> AccountContext:
    return provider_context(app, runtime.secret_box, runtime.settings)
