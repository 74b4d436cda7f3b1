"""The phone API (``/mobile/v1/…``, also under ``/api``) that the SMS Gateway for Android app
speaks in private-server mode: register, fetch messages and report their states, fetch webhooks
and settings, and listen for events (Server-Sent Events; FCM push is not offered, so phones
should use the app's ``SSE_ONLY`` notification channel). Thin, as the 3rd-party router."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from tidings.api.android import views
from tidings.api.android.events import event_hub
from tidings.api.deps import DbSession, RuntimeDep
from tidings.db.models import AndroidDevice, ChannelAccount
from tidings.domain.android import SSE_KEEPALIVE, format_time, sse_frame
from tidings.errors import InvalidInput, Unauthorized
from tidings.runtime import Runtime
from tidings.services import sms_apps
from tidings.services.android import access, config, messages
from tidings.services.android.messages import PhoneReport, RecipientReport

router = APIRouter(tags=["android: phone API"])

KEEPALIVE_SECONDS = 15.0
BUILT_IN_INBOUND_EVENTS = ("sms:received", "sms:data-received")


async def get_device(request: Request, session: DbSession, runtime: RuntimeDep) -> AndroidDevice:
    """The calling phone (its bearer token); 401 for an unknown or deleted one."""
    return await access.authenticate_device(session, request.headers.get("authorization"),
                                            runtime.clock())


Device = Annotated[AndroidDevice, Depends(get_device)]


@router.post("/device", status_code=201, summary="Register a phone")
async def register(request: Request, session: DbSession, runtime: RuntimeDep) -> JSONResponse:
    body = views.json_object(await views.json_body(request) or {})
    sim_cards = views.optional(body, "simCards", list)
    registered = await access.register_device(
        session, authorization=request.headers.get("authorization"),
        secret_key=runtime.settings.require_secret_key(),
        name=views.optional(body, "name", str), push_token=views.optional(body, "pushToken", str),
        sim_cards=sim_cards, now=runtime.clock())
    answer: dict[str, Any] = {"id": registered.device.id, "token": registered.token,
                              "login": registered.login}
    if registered.password is not None:
        answer["password"] = registered.password
    return JSONResponse(answer, status_code=201)


@router.get("/device", summary="The calling phone, and the address it calls from")
async def get_device_info(request: Request, session: DbSession,
                          runtime: RuntimeDep) -> JSONResponse:
    answer: dict[str, Any] = {"externalIp": request.client.host if request.client else ""}
    if request.headers.get("authorization"):
        device = await access.authenticate_device(
            session, request.headers.get("authorization"), runtime.clock())
        answer["device"] = views.device(device)
    return JSONResponse(answer)


@router.patch("/device", status_code=204, summary="Update the phone's push token and SIMs")
async def update_device(request: Request, device: Device, session: DbSession,
                        runtime: RuntimeDep) -> Response:
    body = views.json_object(await views.json_body(request))
    await access.update_device(session, device, device_id=views.optional(body, "id", str) or "",
                               push_token=views.optional(body, "pushToken", str),
                               sim_cards=views.optional(body, "simCards", list),
                               now=runtime.clock())
    return Response(status_code=204)


@router.get("/user/code", summary="A one-time code for adding a phone to this login (Basic)")
async def user_code(request: Request, session: DbSession, runtime: RuntimeDep) -> JSONResponse:
    authorization = request.headers.get("authorization") or ""
    if not authorization.lower().startswith("basic "):
        raise Unauthorized("send Authorization: Basic <login:password>", "not_authenticated")
    caller = await access.authenticate_client(
        session, authorization=authorization, tokens=runtime.tokens,
        secret_key=runtime.settings.require_secret_key(), now=runtime.clock())
    code = await access.one_time_code(session, caller, runtime.clock())
    return JSONResponse({"code": code.code, "validUntil": format_time(code.expires_at)})


@router.patch("/user/password", status_code=204, summary="Change the login's password")
async def change_password(request: Request, device: Device, session: DbSession,
                          runtime: RuntimeDep) -> Response:
    body = views.json_object(await views.json_body(request))
    await access.change_password(session, device,
                                 current=views.optional(body, "currentPassword", str) or "",
                                 new=views.optional(body, "newPassword", str) or "",
                                 now=runtime.clock())
    return Response(status_code=204)


@router.get("/message", summary="Messages this phone should send or cancel (at most 100)")
@router.get("/messages", summary="Alias (older clients)",
            include_in_schema=False)
async def pull_messages(request: Request, device: Device, session: DbSession,
                        runtime: RuntimeDep) -> JSONResponse:
    order = (request.query_params.get("order") or "lifo").lower()
    if order not in ("lifo", "fifo"):
        raise InvalidInput.for_field("order", "must be lifo or fifo")
    found = await messages.pull_for_device(session, device, fifo=order == "fifo",
                                           now=runtime.clock())
    return JSONResponse([views.phone_message(view) for view in found])


@router.patch("/message", status_code=204, summary="Report the states of messages")
@router.patch("/messages", status_code=204, summary="Alias (older clients)",
              include_in_schema=False)
async def report_states(request: Request, device: Device, session: DbSession,
                        runtime: RuntimeDep) -> Response:
    body = await views.json_body(request)
    if not isinstance(body, list):
        raise InvalidInput("body must be a list of message states")
    await messages.apply_phone_reports(session, device, [_report(item) for item in body],
                                       runtime.clock())
    return Response(status_code=204)


@router.get("/webhooks", summary="Webhooks this phone must send")
async def phone_webhooks(device: Device, session: DbSession, runtime: RuntimeDep) -> JSONResponse:
    hooks = [views.webhook(item) for item in await config.device_webhooks(session, device)]
    app = await session.get(ChannelAccount, device.channel_account_id)
    assert app is not None  # the device authenticated through its active app
    return JSONResponse(hooks + _built_in_webhooks(app, runtime))


@router.get("/settings", summary="The login's settings, secrets included")
async def phone_settings(device: Device, session: DbSession) -> JSONResponse:
    return JSONResponse(await config.login_settings(session, device.login_id))


@router.get("/events", summary="Server-Sent Events for this phone")
async def events(request: Request, device: Device, session: DbSession) -> StreamingResponse:
    await session.commit()  # the stream may last hours: hold no transaction
    return StreamingResponse(_event_stream(request, device.id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _event_stream(request: Request, device_id: str) -> AsyncIterator[bytes]:
    """The phone's events as SSE frames, a keep-alive comment when idle, until the phone hangs
    up or the server starts draining."""
    draining: asyncio.Event = request.app.state.draining
    async with event_hub(request).subscribe(device_id) as queue:
        yield SSE_KEEPALIVE
        while not draining.is_set():
            getter = asyncio.ensure_future(queue.get())
            stop = asyncio.ensure_future(draining.wait())
            done, _ = await asyncio.wait({getter, stop}, timeout=KEEPALIVE_SECONDS,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in (getter, stop):
                if task not in done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if getter in done:
                event = getter.result()
                yield sse_frame(event.type, event.data)
            elif not done:
                yield SSE_KEEPALIVE


def _report(item: Any) -> PhoneReport:
    entry = views.json_object(item, "each message state")
    ext_id, state = views.optional(entry, "id", str), views.optional(entry, "state", str)
    if not ext_id or not state:
        raise InvalidInput("each message state needs id and state")
    recipients = []
    for raw in views.optional(entry, "recipients", list) or []:
        recipient = views.json_object(raw, "each recipient")
        number = views.optional(recipient, "phoneNumber", str)
        recipient_state = views.optional(recipient, "state", str)
        if not number or not recipient_state:
            raise InvalidInput("each recipient needs phoneNumber and state")
        recipients.append(RecipientReport(number, recipient_state,
                                          views.optional(recipient, "error", str)))
    states = views.optional(entry, "states", dict) or {}
    return PhoneReport(ext_id=ext_id, state=state, recipients=recipients,
                       states={str(k): str(v) for k, v in states.items() if v is not None})


def _built_in_webhooks(app: ChannelAccount, runtime: Runtime) -> list[dict[str, Any]]:
    """Received SMS come back to Tidings as inbound messages without any setup: the app's
    inbound webhook URL is listed for the received events, when the server's public URL is
    HTTPS (the app refuses anything else)."""
    inbound_url, _ = sms_apps.webhook_urls(app, runtime.settings.public_url)
    if not inbound_url.startswith("https://"):
        return []
    return [{"id": f"tidings-{event.replace(':', '-')}", "event": event, "deviceId": None,
             "url": inbound_url} for event in BUILT_IN_INBOUND_EVENTS]
