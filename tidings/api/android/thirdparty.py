"""The SMS Gateway for Android 3rd-party API (``/3rdparty/v1/…``, also under ``/api``), for
existing clients: send, track and cancel messages, and manage phones, webhooks, settings and
JWTs. Thin: each endpoint authenticates (``caller``), reads its body, calls
``tidings.services.android`` and shapes the answer with ``views``. Changes that phones must
hear about are pushed to them after the commit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tidings import __version__
from tidings.api.android import views
from tidings.api.android.events import push_to_devices
from tidings.api.deps import DbSession, RuntimeDep, take_api_rate
from tidings.db.session import database_problem
from tidings.domain.android import ANDROID_STATES, format_time, public_settings
from tidings.errors import InvalidInput, NotImplementedByServer
from tidings.pipeline.device_events import DeviceEvent
from tidings.runtime import Runtime
from tidings.services.android import access, config, messages
from tidings.services.android.access import AndroidCaller

router = APIRouter(tags=["android: 3rd-party API"])


async def get_caller(request: Request, runtime: RuntimeDep) -> AndroidCaller:
    """The authenticated caller (Basic login, JWT or tenant API key), within its tenant's API
    rate limit."""
    async with runtime.read_sessions() as reads:
        caller = await access.authenticate_client(
            reads, authorization=request.headers.get("authorization"), tokens=runtime.tokens,
            secret_key=runtime.settings.require_secret_key(), now=runtime.clock(),
            cache=runtime.auth_cache)
    await take_api_rate(runtime, caller.tenant_id)
    return caller


Caller = Annotated[AndroidCaller, Depends(get_caller)]


# --- messages -------------------------------------------------------------------------------


@router.post("/messages", status_code=202, summary="Send a message through a phone")
@router.post("/message", status_code=202, summary="Alias (older clients)",
             include_in_schema=False)
async def send_message(request: Request, caller: Caller, session: DbSession,
                       runtime: RuntimeDep) -> JSONResponse:
    caller.require("messages:send")
    body = views.json_object(await views.json_body(request))
    send = _send_request(body)
    options = messages.SendOptions(
        skip_phone_validation=views.query_flag(request, "skipPhoneValidation"),
        device_active_within_hours=views.query_int(request, "deviceActiveWithin"))
    # In turn with this process's other writers: on SQLite, concurrent sends would otherwise
    # sleep in its busy handler waiting for each other's write lock.
    async with runtime.write_turn:
        view = await messages.send_message(session, caller, send, options, now=runtime.clock())
        await session.commit()
    await push_to_devices(request, [view.header.device_id], DeviceEvent("MessageEnqueued"))
    mount = request.url.path.rstrip("/").rsplit("/", 1)[0]  # /3rdparty/v1 or /api/3rdparty/v1
    return JSONResponse(views.message_state(view), status_code=202,
                        headers={"Location": f"{mount}/messages/{view.header.ext_id}"})


@router.get("/messages", summary="List messages")
@router.get("/message", summary="Alias (older clients)",
            include_in_schema=False)
async def list_messages(request: Request, caller: Caller, session: DbSession) -> JSONResponse:
    caller.require("messages:list")
    state = request.query_params.get("state") or None
    if state is not None and state not in ANDROID_STATES:
        raise InvalidInput.for_field("state", "must be one of " + ", ".join(ANDROID_STATES))
    device_id = request.query_params.get("deviceId") or None
    if device_id is not None and len(device_id) != 21:
        raise InvalidInput.for_field("deviceId", "must be 21 characters")
    sort = request.query_params.get("sort") or "-created_at"
    if sort not in ("created_at", "-created_at"):
        raise InvalidInput.for_field("sort", "must be created_at or -created_at")
    limit = views.query_int(request, "limit")
    offset = views.query_int(request, "offset") or 0
    if offset < 0:
        raise InvalidInput.for_field("offset", "must be zero or more")
    filters = messages.ListFilters(
        since=views.query_time(request, "from"), until=views.query_time(request, "to"),
        state=state, device_id=device_id,
        limit=min(max(limit or messages.LIST_LIMIT_DEFAULT, 1), messages.LIST_LIMIT_MAX),
        offset=offset, newest_first=sort == "-created_at")
    found, total = await messages.list_messages(session, caller, filters)
    include = views.query_flag(request, "includeContent")
    return JSONResponse([views.message_state(view, include_content=include) for view in found],
                        headers={"X-Total-Count": str(total)})


@router.get("/messages/{message_id}", summary="One message's state")
@router.get("/message/{message_id}", summary="Alias (older clients)",
            include_in_schema=False)
async def get_message(message_id: str, caller: Caller, session: DbSession) -> JSONResponse:
    caller.require("messages:read")
    return JSONResponse(views.message_state(
        await messages.get_message(session, caller, message_id)))


@router.delete("/messages/{message_id}", summary="Cancel a pending message")
@router.delete("/message/{message_id}", summary="Alias (older clients)",
               include_in_schema=False)
async def cancel_message(message_id: str, request: Request, caller: Caller,
                         session: DbSession, runtime: RuntimeDep) -> JSONResponse:
    caller.require("messages:cancel")
    view = await messages.cancel_message(session, caller, message_id, runtime.clock())
    await session.commit()
    await push_to_devices(request, [view.header.device_id],
                          DeviceEvent("MessageCancelled", {"messageId": view.header.ext_id}))
    return JSONResponse(views.message_state(view))


@router.post("/messages/inbox/export", status_code=202, summary="Ask phones to export their "
             "inbox (deprecated: use /inbox/refresh)")
async def export_inbox(request: Request, caller: Caller, session: DbSession) -> Response:
    caller.require("messages:export")
    body = views.json_object(await views.json_body(request))
    await _request_export(request, session, caller, body)
    return Response(status_code=202, headers={"Deprecation": "true"})


@router.post("/inbox/refresh", status_code=202,
             summary="Ask phones to report received messages again")
async def refresh_inbox(request: Request, caller: Caller, session: DbSession) -> Response:
    caller.require("inbox:refresh")
    body = views.json_object(await views.json_body(request))
    await _request_export(request, session, caller, body)
    return Response(status_code=202)


@router.get("/inbox", summary="Not on a server: phones keep their inbox (501)")
@router.get("/logs", summary="Not on a server: phones keep their logs (501)")
async def phone_only(caller: Caller) -> Response:
    raise NotImplementedByServer("only the phone implements this; use /inbox/refresh and "
                                 "an sms:received webhook")


# --- phones, webhooks, settings -------------------------------------------------------------


@router.get("/devices", summary="The login's phones")
@router.get("/device", summary="Alias (older clients)",
            include_in_schema=False)
async def list_devices(caller: Caller, session: DbSession) -> JSONResponse:
    caller.require("devices:list")
    return JSONResponse([views.device(item)
                         for item in await access.list_devices(session, caller)])


@router.delete("/devices/{device_id}", status_code=204, summary="Remove a phone")
@router.delete("/device/{device_id}", status_code=204, summary="Alias (older clients)",
               include_in_schema=False)
async def delete_device(device_id: str, caller: Caller, session: DbSession,
                        runtime: RuntimeDep) -> Response:
    caller.require("devices:delete")
    await access.delete_device(session, caller, device_id, runtime.clock())
    return Response(status_code=204)


@router.get("/webhooks", summary="The login's webhook registrations")
async def list_webhooks(caller: Caller, session: DbSession) -> JSONResponse:
    caller.require("webhooks:list")
    return JSONResponse([views.webhook(item)
                         for item in await config.list_webhooks(session, caller)])


@router.post("/webhooks", status_code=201, summary="Register (or replace, by id) a webhook")
async def upsert_webhook(request: Request, caller: Caller, session: DbSession,
                         runtime: RuntimeDep) -> JSONResponse:
    caller.require("webhooks:write")
    body = views.json_object(await views.json_body(request))
    hook = await config.upsert_webhook(
        session, caller, ext_id=views.optional(body, "id", str),
        url=views.optional(body, "url", str) or "",
        event=views.optional(body, "event", str) or "",
        device_id=views.optional(body, "deviceId", str), now=runtime.clock())
    answer = views.webhook(hook)
    await _commit_and_push(request, session, caller, DeviceEvent("WebhooksUpdated"))
    return JSONResponse(answer, status_code=201)


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook")
async def delete_webhook(webhook_id: str, request: Request, caller: Caller,
                         session: DbSession) -> Response:
    caller.require("webhooks:delete")
    await config.delete_webhook(session, caller, webhook_id)
    await _commit_and_push(request, session, caller, DeviceEvent("WebhooksUpdated"))
    return Response(status_code=204)


@router.get("/settings", summary="The login's phone settings (secrets hidden)")
async def get_settings(caller: Caller, session: DbSession) -> JSONResponse:
    caller.require("settings:read")
    return JSONResponse(public_settings(await config.login_settings(session, caller.login_id)))


@router.patch("/settings", summary="Merge into the phone settings")
async def patch_settings(request: Request, caller: Caller, session: DbSession,
                         runtime: RuntimeDep) -> JSONResponse:
    return await _change_settings(request, caller, session, runtime, replace=False)


@router.put("/settings", summary="Replace the phone settings")
async def put_settings(request: Request, caller: Caller, session: DbSession,
                       runtime: RuntimeDep) -> JSONResponse:
    return await _change_settings(request, caller, session, runtime, replace=True)


# --- health and tokens ----------------------------------------------------------------------


@router.get("/health", summary="Health (no authentication)")
@router.get("/health/live", summary="Health probe",
            include_in_schema=False)
@router.get("/health/ready", summary="Health probe",
            include_in_schema=False)
@router.get("/health/startup", summary="Health probe",
            include_in_schema=False)
async def health(runtime: RuntimeDep) -> JSONResponse:
    return await health_answer(runtime)


@router.post("/auth/token", status_code=201, summary="Issue a JWT with scopes")
async def issue_token(request: Request, caller: Caller, session: DbSession,
                      runtime: RuntimeDep) -> JSONResponse:
    caller.require("tokens:manage")
    body = views.json_object(await views.json_body(request))
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidInput.for_field("scopes", "must be a list of scopes")
    issued = await access.issue_token(session, caller, scopes=scopes,
                                      ttl_seconds=views.optional(body, "ttl", int),
                                      secret_key=runtime.settings.require_secret_key(),
                                      now=runtime.clock())
    return JSONResponse(views.token(issued), status_code=201)


@router.post("/auth/token/refresh", status_code=201, summary="Swap a refresh token for a pair")
async def refresh_token(request: Request, session: DbSession,
                        runtime: RuntimeDep) -> JSONResponse:
    issued = await access.refresh_token(session, authorization=request.headers.get(
        "authorization"), secret_key=runtime.settings.require_secret_key(), now=runtime.clock())
    return JSONResponse(views.token(issued), status_code=201)


@router.delete("/auth/token/{jti}", status_code=204, summary="Revoke a JWT pair")
async def revoke_token(jti: str, caller: Caller, session: DbSession,
                       runtime: RuntimeDep) -> Response:
    caller.require("tokens:manage")
    await access.revoke_token(session, caller, jti, runtime.clock())
    return Response(status_code=204)


async def health_answer(runtime: Runtime) -> JSONResponse:
    """The original's health document: ``pass`` with a database check, 503 ``fail``."""
    problem = await database_problem(runtime.engine)
    check = {"status": "fail" if problem else "pass", "observedValue": 0 if problem else 1,
             "observedUnit": "reachable", "description": problem or "database answers"}
    body = {"status": "fail" if problem else "pass", "version": __version__,
            "releaseId": 1, "checks": {"database:responsive": check}}
    return JSONResponse(body, status_code=503 if problem else 200)


# --- helpers --------------------------------------------------------------------------------


def _send_request(body: dict[str, Any]) -> messages.AndroidSend:
    text_message = views.optional(body, "textMessage", dict)
    data_message = views.optional(body, "dataMessage", dict)
    legacy = views.optional(body, "message", str)
    given = [part for part in (text_message, data_message, legacy) if part is not None]
    if len(given) != 1:
        raise InvalidInput.for_field("textMessage", "exactly one of message, textMessage or "
                                     "dataMessage is required")
    text = views.optional(text_message, "text", str) if text_message is not None else legacy
    if text_message is not None and text is None:
        raise InvalidInput.for_field("textMessage.text", "is required")
    numbers = body.get("phoneNumbers")
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise InvalidInput.for_field("phoneNumbers", "must be a list of phone numbers")
    delivery_report = views.optional(body, "withDeliveryReport", bool)
    return messages.AndroidSend(
        phone_numbers=numbers, text=text,
        data=views.optional(data_message, "data", str) if data_message is not None else None,
        data_port=views.optional(data_message, "port", int) if data_message is not None
        else None,
        ext_id=views.optional(body, "id", str), device_id=views.optional(body, "deviceId", str),
        sim_number=views.optional(body, "simNumber", int), ttl=views.optional(body, "ttl", int),
        valid_until=views.optional_time(body, "validUntil"),
        schedule_at=views.optional_time(body, "scheduleAt"),
        with_delivery_report=True if delivery_report is None else delivery_report,
        priority=views.optional(body, "priority", int) or 0,
        is_encrypted=bool(views.optional(body, "isEncrypted", bool)))


async def _request_export(request: Request, session: AsyncSession, caller: AndroidCaller,
                          body: dict[str, Any]) -> None:
    since, until = views.optional_time(body, "since"), views.optional_time(body, "until")
    if since is None or until is None or since > until:
        raise InvalidInput.for_field("since", "since and until are required, since first")
    device_id = views.optional(body, "deviceId", str)
    devices = await config.device_ids_of_login(session, caller.login_id)
    if device_id is not None:
        if device_id not in devices:
            raise InvalidInput.for_field("deviceId", f"device {device_id} not found")
        devices = [device_id]
    event = DeviceEvent("MessagesExportRequested", {
        "since": format_time(since), "until": format_time(until),
        "messageTypes": views.optional(body, "messageTypes", list) or ["SMS"],
        "webhookDelivery": views.optional(body, "webhookDelivery", str) or "Individual",
        "triggerWebhooks": True if body.get("triggerWebhooks") is None
        else bool(body.get("triggerWebhooks"))})
    await push_to_devices(request, devices, event)


async def _change_settings(request: Request, caller: AndroidCaller, session: AsyncSession,
                           runtime: Runtime, *, replace: bool) -> JSONResponse:
    caller.require("settings:write")
    body = views.json_object(await views.json_body(request))
    settings = await config.change_settings(session, caller, body, replace=replace,
                                            now=runtime.clock())
    await _commit_and_push(request, session, caller, DeviceEvent("SettingsUpdated"))
    return JSONResponse(public_settings(settings))


async def _commit_and_push(request: Request, session: AsyncSession, caller: AndroidCaller,
                           event: DeviceEvent) -> None:
    devices = await config.device_ids_of_login(session, caller.login_id)
    await session.commit()
    await push_to_devices(request, devices, event)
