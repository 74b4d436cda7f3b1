"""``/api/v1/sms/outbox``: one SMS through whichever of the tenant's SMS apps takes it first
(``tidings.services.outbox``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, RuntimeDep
from tidings.api.slugs.deps import Reader, Sender
from tidings.api.slugs.schemas import SlugSend
from tidings.services import outbox, sms_send

router = APIRouter(prefix="/api/v1/sms/outbox", tags=["sms outbox"])


class OutboxCreate(SlugSend):
    preferred_provider_slug: str | None = Field(default=None,
                                                description="Tried first, e.g. infobip-sms.")
    idempotency_key: str | None = None
    meta: dict[str, Any] | None = Field(default=None, description="Kept with the job.")


class OutboxAccepted(BaseModel):
    id: str
    dispatch_status: str
    idempotent_replay: bool


class OutboxAttemptBody(BaseModel):
    attempt: int
    sms_app_id: str | None
    provider_slug: str | None
    outcome: str = Field(description="accepted, retry (failed, may be tried again) or reject.")
    code: str | None
    reason: str | None
    at: dt.datetime


class OutboxJobBody(BaseModel):
    id: str
    dispatch_status: str = Field(description="pending, sending, sent, failed, "
                                             "dispatch_timeout or cancelled.")
    state: str = Field(description="The message's neutral state (delivered after a report).")
    mobile: str
    message: str
    sender: str | None
    datetime: dt.datetime | None
    deadline: dt.datetime | None
    preferred_provider_slug: str | None
    idempotency_key: str | None
    meta: dict[str, Any] | None
    sms_app_id: str = Field(description="The app that sent it, or is to try it next.")
    provider_slug: str | None
    provider_message_id: str | None
    error: dict[str, str | None] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    attempts: list[OutboxAttemptBody]


@router.post("", summary="Send one SMS through the first of the tenant's apps that takes it",
             status_code=202, response_model=OutboxAccepted,
             responses={200: {"model": OutboxAccepted,
                              "description": "A replay of an idempotency_key"}})
async def create_outbox_job(
        body: OutboxCreate, principal: Sender, session: DbSession,
        runtime: RuntimeDep) -> JSONResponse:
    sender = await sms_send.tenant_sender(session, principal.tenant_id, principal.mode.value)
    job_id, status, replay = await outbox.accept_outbox_job(
        session, sender, outbox.OutboxRequest(
            mobile=str(body.mobile), message=body.message, sender=body.sender,
            send_at=body.send_at, preferred_provider_slug=body.preferred_provider_slug,
            idempotency_key=body.idempotency_key, meta=body.meta),
        now=runtime.clock(), settings=runtime.settings)
    return JSONResponse({"id": job_id, "dispatch_status": status, "idempotent_replay": replay},
                        status_code=200 if replay else 202)


@router.get("/{job_id}", summary="An outbox job, its meta and every attempt",
            response_model=OutboxJobBody)
async def get_outbox_job(
        job_id: str, principal: Reader, session: DbSession) -> OutboxJobBody:
    view = await outbox.get_outbox_job(session, principal.tenant_id, job_id)
    error = ({"code": view.error_code, "detail": view.error_detail}
             if view.error_code and view.dispatch_status != "sent" else None)
    return OutboxJobBody(
        id=view.id, dispatch_status=view.dispatch_status, state=view.state,
        mobile=view.mobile, message=view.message, sender=view.sender,
        datetime=view.scheduled_at, deadline=view.deadline,
        preferred_provider_slug=view.preferred_provider_slug,
        idempotency_key=view.idempotency_key, meta=view.meta, sms_app_id=view.sms_app_id,
        provider_slug=view.provider_slug, provider_message_id=view.provider_message_id,
        error=error, created_at=view.created_at, updated_at=view.updated_at,
        attempts=[OutboxAttemptBody(**vars(attempt)) for attempt in view.attempts])
