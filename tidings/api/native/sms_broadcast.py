"""``/sms/v1/broadcast/…``: send one text to a list of phones, a contact segment or a CSV, and
follow its progress.

``POST /sms/v1/broadcast/`` takes a JSON body (``phones`` or ``segment``) or a multipart form
(the same fields, plus the CSV as ``file``). Everything accepted is stored in the request's
transaction before the 202, so the answer means every accepted message is on disk; the
semantics (placeholders, rejected rows, duplicates, the 400 cases) are in
``tidings.services.broadcasts``. ``GET`` answers live counters read from the messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from tidings.api.android.events import push_to_devices
from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.domain.roles import Permission
from tidings.errors import InvalidInput
from tidings.pipeline.device_events import DeviceEvent
from tidings.runtime import Runtime
from tidings.services import broadcasts, sms_send
from tidings.services.android import config as android_config
from tidings.services.auth import Principal
from tidings.services.broadcasts import BroadcastRequest, BroadcastView

router = APIRouter(prefix="/sms/v1/broadcast", tags=["sms broadcast"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              402: {"model": ErrorBody}, 403: {"model": ErrorBody},
                              404: {"model": ErrorBody}})

Sender = Annotated[Principal, Depends(requires(Permission.MESSAGES_SEND))]
ModelT = TypeVar("ModelT", bound=BaseModel)


class _Options(RequestBody):
    sms_app_id: str | None = Field(default=None, max_length=64,
                                   description="Default: the tenant's default app.")
    text: str = Field(max_length=10_000, description=(
        "The text; {{field}} placeholders (name, email, phone, custom attributes, or the CSV's "
        "columns) are filled per recipient; {{field|default}} gives a default."))
    dlt_template_id: str | None = Field(default=None, max_length=40)
    priority: int = Field(default=0, description="-128..127; >= 100 skips rate limits.")
    scheduled_at: datetime | None = None
    ttl: int | None = Field(default=None, description="Seconds; or valid_until, not both.")
    valid_until: datetime | None = None
    sender_id: str | None = Field(default=None, max_length=32)
    callback_url: str | None = Field(default=None, max_length=2000)

    def request(self) -> BroadcastRequest:
        return BroadcastRequest(**self.model_dump(exclude={"phones", "segment"}))


class BroadcastCreate(_Options):
    """The JSON body: exactly one of ``phones`` and ``segment``."""

    phones: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, description="Phone numbers (E.164, or national in the tenant's region).")
    segment: str | None = Field(default=None, max_length=100,
                                description="A contact segment: its contacts are the recipients.")


class BroadcastForm(_Options):
    """The multipart form: these fields plus ``file``, a CSV with a ``phone`` column."""

    segment: str | None = Field(default=None, max_length=100)


class RejectedRowBody(BaseModel):
    row: int | None = Field(description="Position in phones (from 1) or CSV data row number.")
    contact_id: str | None = Field(description="For a segment's contact.")
    phone: str
    code: str
    reason: str


class BroadcastBody(BaseModel):
    id: str
    sms_app_id: str
    status: str = Field(description="queued, sending (some still queued or sending), completed.")
    total: int = Field(description="Recipients named: accepted + rejected + duplicates.")
    accepted: int
    duplicates: int
    rejected: int
    queued: int
    sending: int
    sent: int
    delivered: int
    read: int
    failed: int
    expired: int
    cancelled: int
    rejected_rows: list[RejectedRowBody] = Field(description="The first rejected recipients.")
    rejected_truncated: bool
    created_at: datetime


def _body(view: BroadcastView) -> BroadcastBody:
    return BroadcastBody(
        id=view.id, sms_app_id=view.sms_app_id, status=view.status, total=view.total,
        accepted=view.accepted, duplicates=view.duplicates, rejected=view.rejected,
        **view.counts,
        rejected_rows=[RejectedRowBody(row=r.row, contact_id=r.contact_id, phone=r.phone,
                                       code=r.code, reason=r.reason)
                       for r in view.rejected_rows],
        rejected_truncated=view.rejected_truncated, created_at=view.created_at)


def _validated(model: type[ModelT], data: Any) -> ModelT:
    """``data`` as ``model``; a problem answers 400 like any body validation."""
    try:
        if isinstance(data, bytes | str):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**problem, "loc": ("body", *problem["loc"])}
                                      for problem in exc.errors(include_url=False)]) from None


_FORM_SCHEMA = BroadcastForm.model_json_schema()
_FORM_SCHEMA["title"] = "BroadcastUpload"
_FORM_SCHEMA["properties"]["file"] = {"type": "string", "format": "binary",
                                      "description": "CSV (UTF-8) with a phone column."}
_REQUEST_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": BroadcastCreate.model_json_schema()},
    "multipart/form-data": {"schema": _FORM_SCHEMA},
}}}


async def _accept(session: AsyncSession, principal: Principal, runtime: Runtime, options: _Options,
                  source: broadcasts.Source) -> BroadcastView:
    sender = await sms_send.tenant_sender(session, principal.tenant_id, principal.mode.value)
    return await broadcasts.accept_broadcast(
        session, sender, options.request(), source, now=runtime.clock(),
        max_segments=runtime.settings.sms_max_segments)


def _form_fields(items: list[tuple[str, Any]]) -> tuple[dict[str, str], UploadFile | None]:
    fields: dict[str, str] = {}
    upload: UploadFile | None = None
    for name, value in items:
        if name == "file":
            if not isinstance(value, UploadFile):
                raise InvalidInput.for_field("file", "must be an uploaded file")
            upload = value
        elif name == "phones":
            raise InvalidInput.for_field("phones", "send phones in a JSON body, or the "
                                         "recipients as a CSV file", "invalid_source")
        elif isinstance(value, UploadFile):
            raise InvalidInput.for_field(name, "must be a plain form field, not a file")
        elif value != "":
            fields[name] = value
    return fields, upload


@router.post("/", status_code=202, response_model=BroadcastBody, openapi_extra=_REQUEST_BODY,
             summary="Send one text to phones, a segment or a CSV (messages.send)")
async def create_broadcast(request: Request, response: Response, principal: Sender,
                           session: DbSession, runtime: RuntimeDep) -> BroadcastBody:
    """Accept a broadcast: a JSON body with ``phones`` or ``segment``, or a multipart form
    with the CSV as ``file``. Answers 202 once every accepted message is stored; rejected
    recipients are counted and the first are listed. 400 for a bad request as a whole or when
    no recipient can be sent to (nothing is stored then); 402 when the wallet pays for none.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=50) as form:
            fields, upload = _form_fields(list(form.multi_items()))
            options = _validated(BroadcastForm, fields)
            source = broadcasts.choose_source(
                phones=None, segment=options.segment,
                csv_file=upload.file if upload is not None else None)
            view = await _accept(session, principal, runtime, options, source)
    else:
        body = _validated(BroadcastCreate, await request.body())
        source = broadcasts.choose_source(phones=body.phones, segment=body.segment,
                                          csv_file=None)
        view = await _accept(session, principal, runtime, body, source)
    phones = await android_config.device_ids_of_app(session, view.sms_app_id)
    if phones and principal.mode.value == "live":  # an Android app's phones pull the messages
        await session.commit()
        await push_to_devices(request, phones, DeviceEvent("MessageEnqueued"))
    response.headers["Location"] = f"/sms/v1/broadcast/{view.id}/"
    return _body(view)


@router.get("/", response_model=Page[BroadcastBody],
            summary="The tenant's broadcasts, newest first, with live counters")
async def list_broadcasts(principal: Reader, session: DbSession,
                          page: Pagination) -> Page[BroadcastBody]:
    views, count = await broadcasts.list_broadcasts(session, principal.tenant_id,
                                                    limit=page.limit, offset=page.offset)
    return page.page([_body(view) for view in views], count)


@router.get("/{broadcast_id}/", response_model=BroadcastBody,
            summary="A broadcast with live counters by message state")
async def get_broadcast(broadcast_id: str, principal: Reader,
                        session: DbSession) -> BroadcastBody:
    """Counters per message state, read live; its messages are listed by
    ``GET /sms/v1/messages/?batch_id={id}``. Another tenant's id answers 404."""
    return _body(await broadcasts.get_broadcast(session, principal.tenant_id, broadcast_id))
