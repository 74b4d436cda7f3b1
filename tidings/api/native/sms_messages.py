"""``/sms/v1/messages/…``: send an SMS, list and read messages (with their history), cancel.

A send is validated, then stored through the group-commit writer (``pipeline.ingest``), and
only then answered 201: the message is on disk. ``/send/`` is the alias older Jina Connect
clients call; it answers the same message plus ``success``, ``message_id`` and ``segments``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from tidings.api.android.events import push_to_devices
from tidings.api.deps import DbSession, Reader, RuntimeDep, authenticate_caller, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody, parse_json_body
from tidings.db.models import Message, MessageEvent
from tidings.db.repos.listing import fetch_page
from tidings.domain.roles import Permission
from tidings.pipeline.device_events import DeviceEvent
from tidings.pipeline.ingest import MessageIngest
from tidings.runtime import Runtime
from tidings.services import sms_messages, sms_send
from tidings.services.android import config as android_config
from tidings.services.auth import Principal
from tidings.services.message_view import VIEW_FIELDS, message_view
from tidings.services.sms_messages import MessageFilters
from tidings.services.sms_send import SendPreparer, SendRequest

router = APIRouter(prefix="/sms/v1/messages", tags=["sms messages"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              402: {"model": ErrorBody}, 403: {"model": ErrorBody},
                              404: {"model": ErrorBody}, 409: {"model": ErrorBody}})

Sender = Annotated[Principal, Depends(requires(Permission.MESSAGES_SEND))]


class SendBody(RequestBody):
    phone: str = Field(min_length=1, max_length=64, description="E.164 (+1234567890).")
    text: str = Field(max_length=10_000)
    sms_app_id: str | None = Field(default=None, description="Default: the default app.")
    sender_id: str | None = Field(default=None, max_length=32)
    dlt_template_id: str | None = Field(default=None, max_length=40)
    priority: int = Field(default=0, description="-128..127; >= 100 skips rate limits.")
    scheduled_at: datetime | None = None
    ttl: int | None = Field(default=None, description="Seconds; or valid_until, not both.")
    valid_until: datetime | None = None
    client_ref: str | None = Field(default=None, max_length=128,
                                   description="Idempotency: a repeat answers 409.")
    callback_url: str | None = Field(default=None, max_length=2000)
    failover_sms_app_ids: list[str] = Field(
        default_factory=list, max_length=10,
        description="Apps to try next, in order, when the app's provider rejects or fails it.")


class MessageBody(BaseModel):
    id: str
    direction: str
    state: str
    phone: str = Field(description="The recipient (outbound) or our number (inbound).")
    sender_id: str | None = Field(description="The sender id (outbound) or sender (inbound).")
    text: str
    encoding: str
    segments: int
    priority: int
    sms_app_id: str
    mode: str
    client_ref: str | None
    batch_id: str | None
    dlt_template_id: str | None
    callback_url: str | None
    attempts: int
    provider_message_id: str | None
    error_code: str | None
    error_detail: str | None
    scheduled_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    completed_at: datetime | None


class SendAnswer(MessageBody):
    success: bool
    message_id: str


class EventBody(BaseModel):
    at: datetime
    kind: str
    state_from: str | None
    state_to: str | None
    detail: dict[str, Any]


class MessageDetail(MessageBody):
    events: list[EventBody]


def _view(message: Message) -> dict[str, Any]:
    return message_view(message)


def _row_json(row: dict[str, Any], **extra: Any) -> Response:
    """A stored row as the ``MessageBody`` JSON, written directly: the send path is the
    hottest in the API, and the row's types are already exactly the schema's."""
    body = {name: row[column] for name, column in VIEW_FIELDS}
    for name, value in body.items():
        if isinstance(value, datetime):
            body[name] = value.isoformat().replace("+00:00", "Z")
    return Response(json.dumps({**body, **extra}, ensure_ascii=False), status_code=201,
                    media_type="application/json")


def _event_view(event: MessageEvent) -> EventBody:
    return EventBody(at=event.created_at, kind=event.kind, state_from=event.state_from,
                     state_to=event.state_to, detail=event.detail)


async def _accept(request: Request) -> dict[str, Any]:
    """Authenticate, read and store one send; the stored row.

    The send endpoints take the bare request and do what FastAPI's dependencies and body
    parameter would (``authenticate_caller``, ``SendBody`` from the JSON, the same 400s): on
    the API's hottest path that machinery cost a third of the CPU of a send. Authentication
    comes first, as with the dependencies."""
    runtime: Runtime = request.app.state.runtime
    principal = await authenticate_caller(runtime, request.headers.get("authorization"),
                                          request.headers.get("x-tenant-id"))
    principal.require(Permission.MESSAGES_SEND)
    body = parse_json_body(SendBody, await request.body())
    preparer: SendPreparer = request.app.state.send_preparer
    pending = await preparer.prepare(
        principal.tenant_id, principal.mode.value, SendRequest(**body.model_dump()),
        now=runtime.clock(), max_segments=runtime.settings.sms_max_segments)
    ingest: MessageIngest = request.app.state.ingest
    row = await sms_send.store_one(ingest.submit, pending)
    if row["next_attempt_at"] is None:  # a live message for an Android app: wake its phones
        async with runtime.read_sessions() as reads:
            phones = await android_config.device_ids_of_app(reads, row["channel_account_id"])
        await push_to_devices(request, phones, DeviceEvent("MessageEnqueued"))
    return row


_SEND_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": SendBody.model_json_schema()}}}}


@router.post("/", status_code=201, response_model=MessageBody, openapi_extra=_SEND_BODY_DOC,
             summary="Send an SMS: stored before the 201 (messages.send)")
async def send_message(request: Request) -> Response:
    return _row_json(await _accept(request))


@router.post("/send/", status_code=201, response_model=SendAnswer, openapi_extra=_SEND_BODY_DOC,
             summary="Send an SMS (alias for older clients; adds success and message_id)")
async def send_message_alias(request: Request) -> Response:
    row = await _accept(request)
    return _row_json(row, success=True, message_id=row["id"])


@router.get("/", response_model=Page[MessageBody],
            summary="List messages, newest first, with filters")
async def list_messages(
    principal: Reader, session: DbSession, page: Pagination,
    state: Annotated[str | None, Query()] = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    sms_app_id: Annotated[str | None, Query()] = None,
    direction: Annotated[str | None, Query()] = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    batch_id: Annotated[str | None, Query()] = None,
) -> Page[MessageBody]:
    query = sms_messages.list_messages_query(principal.tenant_id, MessageFilters(
        state=state, phone=phone, sms_app_id=sms_app_id, direction=direction,
        created_after=created_after, created_before=created_before, batch_id=batch_id))
    items, count = await fetch_page(session, query, limit=page.limit, offset=page.offset)
    return page.page([MessageBody(**_view(item)) for item in items], count)


@router.get("/{message_id}/", response_model=MessageDetail,
            summary="One message with its full event history")
async def get_message(message_id: str, principal: Reader,
                      session: DbSession) -> MessageDetail:
    message = await sms_messages.get_message(session, principal.tenant_id, message_id)
    events = await sms_messages.message_events(session, message.id)
    accepted = EventBody(at=message.created_at, kind="accepted", state_from=None,
                         state_to="received" if message.direction == "inbound" else "queued",
                         detail={})
    history = [accepted] if message.direction == "outbound" else []
    return MessageDetail(**_view(message),
                         events=history + [_event_view(event) for event in events])


@router.post("/{message_id}/cancel/", response_model=MessageBody,
             summary="Cancel a message that is still queued (messages.send)")
async def cancel_message(message_id: str, principal: Sender, session: DbSession,
                         runtime: RuntimeDep) -> MessageBody:
    message = await sms_messages.cancel_message(session, principal.tenant_id, message_id,
                                                runtime.clock())
    return MessageBody(**_view(message))
