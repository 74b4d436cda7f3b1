"""``/sms/v1/webhooks/{app_id}/dlr/`` and ``/inbound/``: providers' delivery reports and
inbound messages.

Verify first (the provider's signature scheme, or the per-app token in the URL), then parse,
then apply through the webhooks' group commit (``pipeline.report_ingest``: many webhooks share
one transaction); an unverifiable request answers 403 and changes nothing, a malformed one 400.
The answer on success, once the events are on disk, is what the provider expects (Twilio:
empty TwiML). An unknown app id answers 404 without saying more.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from tidings.api.deps import RuntimeDep
from tidings.api.schemas import ErrorBody
from tidings.db.models import ChannelAccount
from tidings.errors import Forbidden, InvalidInput, NotFound
from tidings.pipeline.report_ingest import ReportIngest
from tidings.providers.base import (
    AccountContext,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
)
from tidings.providers.registry import sms_provider
from tidings.runtime import Runtime
from tidings.services import sms_apps

log = logging.getLogger(__name__)

router = APIRouter(prefix="/sms/v1/webhooks", tags=["sms webhooks"],
                   responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody},
                              404: {"model": ErrorBody}})


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


async def _handle(app_id: str, request: Request, runtime: RuntimeDep) -> Response:
    found = await _webhook_app(runtime, app_id)
    if found is None:
        raise NotFound(f"SMS app {app_id} not found", "sms_app_not_found")
    account, context = found
    provider = sms_provider(account.provider)
    settings = runtime.settings
    # The URL as the provider called it: the public URL plus this path and query.
    public_url = settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        public_url += "?" + request.url.query
    webhook = WebhookRequest(method=request.method, url=public_url,
                             headers=dict(request.headers), query=dict(request.query_params),
                             body=await request.body())
    try:
        provider.verify_webhook(webhook, context)
    except WebhookVerificationError as exc:
        log.warning("webhook for app %s refused: %s", app_id, exc)
        raise Forbidden(str(exc), "webhook_verification_failed") from None
    try:
        events = provider.parse_webhook(webhook, context)
    except WebhookPayloadError as exc:
        raise InvalidInput(str(exc), "webhook_payload_invalid") from None
    ingest: ReportIngest = request.app.state.report_ingest
    summary = await ingest.submit(account, events)
    log.debug("webhook for app %s: %s", app_id, summary)
    ack = provider.webhook_ack
    return Response(content=ack.body, media_type=ack.media_type)


@router.post("/{app_id}/dlr/", summary="A provider's delivery report for an SMS app")
async def delivery_report(app_id: str, request: Request, runtime: RuntimeDep) -> Response:
    return await _handle(app_id, request, runtime)


@router.post("/{app_id}/inbound/", summary="An inbound SMS from a provider for an SMS app")
async def inbound_message(app_id: str, request: Request, runtime: RuntimeDep) -> Response:
    return await _handle(app_id, request, runtime)
