"""``/tenants/webhooks/…``: tenant-wide endpoints for neutral events, signed with HMAC, and
every callback delivery of the tenant (webhooks and service profiles) with its replay.

Rules (URL checks, events, secrets): ``tidings.services.webhooks``; delivery and retries:
``tidings.pipeline.callbacks``; replays: ``tidings.services.callback_deliveries``. Changing
anything needs ``apps.manage``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.db.models import CallbackDelivery, WebhookEndpoint
from tidings.domain.roles import Permission
from tidings.services import callback_deliveries, webhooks
from tidings.services.auth import Principal

router = APIRouter(prefix="/tenants", tags=["webhooks"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}})

WebhooksManager = Annotated[Principal, Depends(requires(Permission.APPS_MANAGE))]


class WebhookBody(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime


class NewWebhookBody(WebhookBody):
    secret: str | None = Field(
        description="The signing secret made for this endpoint when none was given: shown "
                    "once, never again. Null when you gave one.")


class WebhookList(BaseModel):
    count: int
    results: list[WebhookBody]


class WebhookCreate(RequestBody):
    url: str = Field(max_length=2048, description="An http(s) URL.")
    events: list[str] = Field(
        min_length=1, max_length=len(webhooks.EVENTS),
        description=f"Some of: {', '.join(webhooks.EVENTS)}.")
    secret: str | None = Field(
        default=None, description=f"The HMAC key, {webhooks.SECRET_MIN} to "
                                  f"{webhooks.SECRET_MAX} characters; one is made if left out.")


def _view(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {"id": endpoint.id, "url": endpoint.url, "events": endpoint.events,
            "created_at": endpoint.created_at}


@router.get("/webhooks/", response_model=WebhookList,
            summary="The tenant's webhook endpoints (never their secrets)")
async def list_webhooks(caller: Reader, session: DbSession) -> WebhookList:
    found = await webhooks.list_endpoints(session, caller.tenant_id)
    return WebhookList(count=len(found),
                       results=[WebhookBody.model_validate(_view(e)) for e in found])


@router.post("/webhooks/", response_model=NewWebhookBody, status_code=201,
             summary="Register a webhook endpoint (apps.manage)")
async def create_webhook(body: WebhookCreate, caller: WebhooksManager, session: DbSession,
                         runtime: RuntimeDep) -> NewWebhookBody:
    created = await webhooks.create_endpoint(
        session, runtime.secret_box, tenant_id=caller.tenant_id, url=body.url,
        events=body.events, secret=body.secret,
        allow_private=runtime.settings.callback_allow_private_networks, now=runtime.clock())
    return NewWebhookBody.model_validate({**_view(created.endpoint),
                                          "secret": created.generated_secret})


@router.delete("/webhooks/{endpoint_id}/", status_code=204, response_class=Response,
               summary="Delete a webhook endpoint and its undelivered callbacks (apps.manage)",
               responses={404: {"model": ErrorBody}})
async def delete_webhook(endpoint_id: str, caller: WebhooksManager,
                         session: DbSession) -> Response:
    await webhooks.delete_endpoint(session, caller.tenant_id, endpoint_id)
    return Response(status_code=204)


class DeliveryBody(BaseModel):
    id: int
    event: str
    event_id: str = Field(description="X-Tidings-Event-Id: the same on every try.")
    message_id: str | None
    url: str
    method: str
    state: str = Field(description="pending, delivered or failed (given up).")
    attempts: int
    last_status_code: int | None = Field(description="The receiver's last answer, if any.")
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


def _delivery(delivery: CallbackDelivery) -> DeliveryBody:
    return DeliveryBody.model_validate(delivery, from_attributes=True)


@router.get("/webhooks/deliveries/", response_model=Page[DeliveryBody],
            summary="The tenant's callback deliveries, newest first")
async def list_deliveries(caller: Reader, session: DbSession, page: Pagination,
                          state: str | None = None,
                          message_id: str | None = None) -> Page[DeliveryBody]:
    found, total = await callback_deliveries.list_deliveries_page(
        session, caller.tenant_id, limit=page.limit, offset=page.offset, state=state,
        message_id=message_id)
    return page.page([_delivery(d) for d in found], total)


@router.post("/webhooks/deliveries/{delivery_id}/replay/", response_model=DeliveryBody,
             summary="Send a callback again, now (apps.manage)",
             responses={404: {"model": ErrorBody}})
async def replay_delivery(delivery_id: int, caller: WebhooksManager, session: DbSession,
                          runtime: RuntimeDep) -> DeliveryBody:
    delivery = await callback_deliveries.replay_delivery(session, caller.tenant_id, delivery_id,
                                                         runtime.clock())
    return _delivery(delivery)


class SigningSecretBody(BaseModel):
    secret: str = Field(description="Signs the callbacks of sends that name a callback_url "
                                    "(X-Tidings-Signature, as webhooks are signed).")


@router.get("/webhooks/signing-secret/", response_model=SigningSecretBody,
            summary="The tenant's secret for per-message callbacks (apps.manage)")
async def signing_secret(caller: WebhooksManager, session: DbSession,
                         runtime: RuntimeDep) -> SigningSecretBody:
    return SigningSecretBody(secret=await webhooks.tenant_signing_secret(
        session, runtime.secret_box, caller.tenant_id))
