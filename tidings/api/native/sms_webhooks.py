"""``/sms/v1/webhooks/{app_id}/dlr/`` and ``/inbound/``: providers' delivery reports and
inbound messages.

Verify first (the provider's signature scheme, or the per-app token in the URL), then parse,
then apply through the webhooks' group commit (``pipeline.report_ingest``: many webhooks share
one transaction); an unverifiable request answers 403 and changes nothing, a malformed one 400.
The answer on success, once the events are on disk, is what the provider expects (Twilio:
empty TwiML). An unknown app id answers 404 without saying more.

A busy provider posts hundreds of webhooks a second, so these requests skip FastAPI's routing
and dependency machinery: ``WebhookLane``, an ASGI middleware inside the metrics and body-limit
middlewares, serves them straight from the ASGI scope with ``handle_webhook``. The FastAPI
routes below call the same function; they describe the endpoints in the OpenAPI document and
serve any request the lane leaves alone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.deps import RuntimeDep
from tidings.api.errors import error_response
from tidings.api.schemas import ErrorBody
from tidings.db.models import ChannelAccount
from tidings.errors import Forbidden, InvalidInput, NotFound, TidingsError
from tidings.pipeline.report_ingest import ReportIngest
from tidings.providers.base import (
    AccountContext,
    WebhookAck,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.registry import sms_provider
from tidings.runtime import Runtime
from tidings.services import sms_apps

log = logging.getLogger(__name__)

PREFIX: Final = "/sms/v1/webhooks"
DLR_ROUTE: Final = PREFIX + "/{app_id}/dlr/"
INBOUND_ROUTE: Final = PREFIX + "/{app_id}/inbound/"
_WEBHOOK_PATH: Final = re.compile(r"/sms/v1/webhooks/([^/]+)/(dlr|inbound)/")

router = APIRouter(tags=["sms webhooks"],
                   responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody},
                              404: {"model": ErrorBody}})


@dataclass(frozen=True)
class IncomingWebhook:
    """A webhook request as the provider sent it, independent of the web framework."""

    app_id: str
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes


async def _webhook_app(runtime: Runtime, app_id: str
                       ) -> tuple[ChannelAccount, AccountContext] | None:
    """The active app a webhook names and its provider context, kept in the runtime's send
    cache for a few seconds (a busy provider posts many webhooks a second; changing or
    deleting an app clears the cache)."""
    key = ("webhook_app", app_id)
    cached: tuple[ChannelAccount, AccountContext] | None = runtime.send_cache.get(key)
    if cached is not None:
        return cached
    async with runtime.read_sessions() as reads:
        account = await sms_apps.find_app_for_webhook(reads, app_id)
    if account is None:
        return None
    provider = sms_provider(account.provider)
    settings = runtime.settings
    context = sms_apps.account_context(
        account, runtime.secret_box, settings.public_url,
        settings.provider_url(provider.slug, provider.default_base_url))
    runtime.send_cache.put(key, (account, context))
    return account, context


async def handle_webhook(runtime: Runtime, ingest: ReportIngest,
                         incoming: IncomingWebhook) -> WebhookAck:
    """Verify, parse and apply one webhook; answers the provider's acknowledgement once its
    events are committed. Raises ``NotFound``, ``Forbidden`` or ``InvalidInput``."""
    found = await _webhook_app(runtime, incoming.app_id)
    if found is None:
        raise NotFound(f"SMS app {incoming.app_id} not found", "sms_app_not_found")
    account, context = found
    provider = sms_provider(account.provider)
    # The URL as the provider called it: the public URL plus this path and query.
    public_url = runtime.settings.public_url.rstrip("/") + incoming.path
    if incoming.query_string:
        public_url += "?" + incoming.query_string
    webhook = WebhookRequest(method=incoming.method, url=public_url, headers=incoming.headers,
                             query=dict(parse_qsl(incoming.query_string,
                                                  keep_blank_values=True)),
                             body=incoming.body)
    try:
        provider.verify_webhook(webhook, context)
    except WebhookVerificationError as exc:
        log.warning("webhook for app %s refused: %s", incoming.app_id, exc)
        raise Forbidden(str(exc), "webhook_verification_failed") from None
    try:
        events = provider.parse_webhook(webhook, context)
    except WebhookPayloadError as exc:
        raise InvalidInput(str(exc), "webhook_payload_invalid") from None
    summary = await ingest.submit(account, events)
    log.debug("webhook for app %s: %s", incoming.app_id, summary)
    return provider.webhook_ack


def _first_wins(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names lower-cased, the first of repeated headers kept (as Starlette reads them)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers


async def _serve_route(app_id: str, request: Request, runtime: Runtime) -> Response:
    ack = await handle_webhook(runtime, request.app.state.report_ingest, IncomingWebhook(
        app_id, request.method, request.url.path, request.url.query,
        _first_wins(request.scope["headers"]), await request.body()))
    return Response(content=ack.body, media_type=ack.media_type)


@router.post(DLR_ROUTE, summary="A provider's delivery report for an SMS app")
async def delivery_report(app_id: str, request: Request, runtime: RuntimeDep) -> Response:
    return await _serve_route(app_id, request, runtime)


@router.post(INBOUND_ROUTE, summary="An inbound SMS from a provider for an SMS app")
async def inbound_message(app_id: str, request: Request, runtime: RuntimeDep) -> Response:
    return await _serve_route(app_id, request, runtime)


class WebhookLane:
    """ASGI middleware serving ``POST`` webhooks with ``handle_webhook`` directly; everything
    else passes on. Sets ``scope["route"]`` to the matching FastAPI route so request metrics
    carry the same route label, and answers errors in the API's error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes = {"dlr": DLR_ROUTE, "inbound": INBOUND_ROUTE}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = (_WEBHOOK_PATH.fullmatch(scope["path"])
                   if scope["type"] == "http" and scope["method"] == "POST" else None)
        if matched is None:
            await self.app(scope, receive, send)
            return
        app_id, kind = matched.groups()
        state = scope["app"].state
        scope["route"] = _RouteLabel(self._routes[kind])
        try:
            body = await _read_body(receive)
            ack = await handle_webhook(state.runtime, state.report_ingest, IncomingWebhook(
                app_id, "POST", scope["path"], scope["query_string"].decode("latin-1"),
                _first_wins(scope["headers"]), body))
        except _ClientGone:
            return
        except TidingsError as exc:
            response = error_response(exc.http_status, exc.detail, exc.code,
                                      request=Request(scope))
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", _content_type(ack.media_type)),
            (b"content-length", str(len(ack.body)).encode())]})
        await send({"type": "http.response.body", "body": ack.body})


@dataclass(frozen=True)
class _RouteLabel:
    """Stands in for the route object in the scope: request metrics read only ``path``."""

    path: str


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class _ClientGone(Exception):
    """The provider hung up before its body arrived."""


def _content_type(media_type: str) -> bytes:
    """As Starlette's ``Response`` writes it: text types get ``charset=utf-8``."""
    if media_type.startswith("text/") and "charset" not in media_type:
        return f"{media_type}; charset=utf-8".encode()
    return media_type.encode()
