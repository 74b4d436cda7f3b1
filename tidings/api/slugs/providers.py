"""``/api/v1/sms-providers/{slug}/…``: one SMS sent while the caller waits, the provider's
account queries (balance, sender names) and the bulk CSV template, through the tenant's app for
that slug (``tidings.services.provider_slugs``).

``POST …/send`` answers, once the provider has answered: 200 with the provider's own JSON when
it took the message (``X-Tidings-Message-Id`` names the stored message); 400
``provider_rejected`` when it refused it; 202 ``queued`` when it did not answer or was busy
(the message stays queued and the pipeline retries it, so the caller must not send it again);
202 ``scheduled`` for a ``datetime`` in the future. A manual send goes at once, outside the
app's rate limit (like priority >= 100); it counts toward the app's daily counters.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from tidings.api.deps import DbSession, RuntimeDep
from tidings.api.slugs.deps import InstalledApp, SendingApp
from tidings.api.slugs.schemas import SlugSend
from tidings.db.models import ChannelAccount
from tidings.errors import ProviderFailed
from tidings.pipeline.direct_send import send_now
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Balance,
    ProviderError,
    Reject,
    Unsupported,
)
from tidings.providers.registry import sms_provider
from tidings.runtime import Runtime
from tidings.services.provider_slugs import build_slug_message, provider_context
from tidings.services.sms_send import store_messages, tenant_sender

router = APIRouter(prefix="/api/v1/sms-providers/{slug}", tags=["sms providers (by slug)"])

CSV_TEMPLATE = ("mobile,message,sender,datetime\r\n"
                "966501234567,Your order is ready,MyBrand,\r\n")
"""The bulk-send CSV: ``mobile`` and ``message`` required; ``sender`` and ``datetime`` (ISO
8601, in the future to schedule) optional."""


@router.post("/send", summary="Send one SMS through the provider and answer what it answered",
             responses={200: {"description": "The provider's own JSON answer"},
                        202: {"description": "Scheduled, or queued for a retry"}})
async def send(body: SlugSend, caller: SendingApp, session: DbSession,
               runtime: RuntimeDep) -> JSONResponse:
    principal, app = caller
    sender = await tenant_sender(session, principal.tenant_id, principal.mode.value)
    now = runtime.clock()
    pending = build_slug_message(app, sender, mobile=str(body.mobile), message=body.message,
                                 sender_name=body.sender, send_at=body.send_at, now=now,
                                 max_segments=runtime.settings.sms_max_segments)
    if pending.row["scheduled_at"] is not None:
        await store_messages(session, [pending], now)
        if pending.error is not None:
            raise pending.error
        await session.commit()
        return JSONResponse({"id": pending.row["id"], "status": "scheduled",
                             "datetime": pending.row["scheduled_at"].isoformat()},
                            status_code=202)
    await session.close()  # the send writes in its own transactions
    sent = await send_now(runtime, pending, app)
    headers = {"X-Tidings-Message-Id": sent.message_id}
    outcome = sent.outcome
    if isinstance(outcome, Accepted):
        return JSONResponse(sent.answer, headers=headers)
    if isinstance(outcome, Reject):
        return JSONResponse({"error": f"{app.provider} refused the message: {outcome.code}: "
                                      f"{outcome.reason}", "code": "provider_rejected",
                             "provider_code": outcome.code, "id": sent.message_id},
                            status_code=400, headers=headers)
    return JSONResponse({"id": sent.message_id, "status": "queued",
                         "detail": f"{app.provider} did not take the message now "
                                   f"({outcome.code}: {outcome.reason}); it is queued and "
                                   "will be retried"}, status_code=202, headers=headers)


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
