"""Steps the callback tests share: a tenant's endpoint, a sent message, a delivery report,
the queue as stored."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import TenantHandle
from tests.fakes.callback_receiver import CallbackReceiver
from tidings.db.models import CallbackDelivery, ChannelAccount, Message
from tidings.domain.states import MessageState
from tidings.providers.base import StatusUpdate
from tidings.runtime import Runtime
from tidings.services import reports, webhooks
from tidings.services.sms_apps import SmsAppFields, create_sms_app
from tidings.services.sms_send import (
    Sender,
    SendPlan,
    SendRequest,
    build_message_row,
    store_messages,
)

WEBHOOK_SECRET = "whsec_test_secret_0123456789"
PHONE = "+14155550100"
OUR_NUMBER = "+14155550000"
Receiver = tuple[CallbackReceiver, str]
"""The receiver and its base URL."""


@dataclass(frozen=True)
class SentMessage:
    app_id: str
    message_id: str


async def add_endpoint(runtime: Runtime, tenant: TenantHandle, url: str,
                       events: tuple[str, ...] = webhooks.EVENTS) -> str:
    async with runtime.sessions() as session:
        created = await webhooks.create_endpoint(
            session, runtime.secret_box, tenant_id=tenant.tenant_id, url=url,
            events=list(events), secret=WEBHOOK_SECRET, allow_private=True,
            now=runtime.clock())
        await session.commit()
    return created.endpoint.id


async def _simulator_app(session: AsyncSession, runtime: Runtime,
                         tenant: TenantHandle) -> ChannelAccount:
    return await create_sms_app(
        session, runtime.secret_box, tenant_id=tenant.tenant_id,
        fields=SmsAppFields(name="Sim", provider="SIMULATOR", sender_id=OUR_NUMBER,
                            provider_credentials={}, provider_config={}),
        default_rate_limit="100/min", now=runtime.clock())


async def _stored_message(session: AsyncSession, runtime: Runtime, tenant: TenantHandle,
                          app: ChannelAccount, ttl: int | None = None) -> str:
    """A queued message to ``PHONE`` through ``app``, as the API would have stored it."""
    row = build_message_row(SendPlan(app=app, template_body=None),
                            Sender(tenant.tenant_id, "US", "live"),
                            SendRequest(phone=PHONE, text="Your code is 1234", ttl=ttl),
                            now=runtime.clock(), max_segments=10)
    await store_messages(session, [row], runtime.clock())
    return str(row.row["id"])


async def sent_message(runtime: Runtime, tenant: TenantHandle, provider_id: str,
                       app_id: str | None = None) -> SentMessage:
    """A message the provider accepted as ``provider_id`` (state ``sent``), through a new
    simulator app unless ``app_id`` names one."""
    async with runtime.sessions() as session:
        app = (await _simulator_app(session, runtime, tenant) if app_id is None
               else await session.get_one(ChannelAccount, app_id))
        message_id = await _stored_message(session, runtime, tenant, app)
        await session.execute(update(Message).where(Message.id == message_id).values(
            state="sent", provider_message_id=provider_id, next_attempt_at=None))
        await session.commit()
        return SentMessage(app.id, message_id)


async def queued_message(runtime: Runtime, tenant: TenantHandle, *,
                         ttl: int | None = None) -> SentMessage:
    """A message waiting in the queue, through a new simulator app."""
    async with runtime.sessions() as session:
        app = await _simulator_app(session, runtime, tenant)
        message_id = await _stored_message(session, runtime, tenant, app, ttl)
        await session.commit()
        return SentMessage(app.id, message_id)


async def report(runtime: Runtime, provider_id: str, state: str, word: str,
                 error_code: str | None = None, error_detail: str | None = None) -> None:
    """Apply the provider's report on the message it accepted as ``provider_id``."""
    async with runtime.sessions() as session:
        message = (await session.execute(select(Message).where(
            Message.provider_message_id == provider_id))).scalar_one()
        await reports.apply_status_updates(
            session, [(message, StatusUpdate(provider_id, MessageState(state), word,
                                             error_code, error_detail))],
            runtime.clock())
        await session.commit()


async def stored_deliveries(runtime: Runtime) -> list[CallbackDelivery]:
    async with runtime.sessions() as session:
        return list((await session.execute(
            select(CallbackDelivery).order_by(CallbackDelivery.id))).scalars())
