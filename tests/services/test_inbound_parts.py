"""Long inbound messages whose parts arrive one by one (SMPP delivers each part in its own
deliver_sm): each part is kept as it comes, and the message is stored once, joined in order,
when its last part is in, or with what came once the rest is a minute late."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import FakeClock, TenantFactory
from tidings.db.models import ChannelAccount, Message, PendingInboundPart
from tidings.providers.base import InboundMessage, InboundPart
from tidings.runtime import Runtime
from tidings.services.reports import (
    ReportSummary,
    apply_webhook_events,
    store_overdue_inbound_parts,
)
from tidings.services.sms_apps import SmsAppFields, create_sms_app

CUSTOMER, SHORT_CODE = "+14155550123", "12345"


async def make_app(runtime: Runtime, tenants: TenantFactory) -> ChannelAccount:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant.tenant_id,
            fields=SmsAppFields(name="SMSC", provider="SIMULATOR", sender_id=SHORT_CODE,
                                provider_credentials={}, provider_config={}),
            default_rate_limit="100/min", now=runtime.clock())
        await session.commit()
    return app


def part(sequence: int, text: str, *, total: int = 3, reference: int = 42,
         sender: str = CUSTOMER) -> InboundPart:
    return InboundPart(InboundMessage(f"smpp-{reference}-{sequence}", sender, SHORT_CODE, text),
                       reference=reference, total=total, sequence=sequence)


async def deliver(runtime: Runtime, app: ChannelAccount, *parts: InboundPart) -> ReportSummary:
    async with runtime.sessions() as session:
        summary = await apply_webhook_events(session, app, parts, runtime.clock())
        await session.commit()
    return summary


async def inbound_texts(runtime: Runtime, app: ChannelAccount) -> list[str]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(Message.text).where(
            Message.channel_account_id == app.id).order_by(Message.id))).scalars())


async def pending(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(
            select(func.count()).select_from(PendingInboundPart))).scalar_one())


async def test_the_message_is_stored_joined_in_order_when_its_last_part_comes(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app = await make_app(runtime, tenants)

    await deliver(runtime, app, part(3, "the end."))
    await deliver(runtime, app, part(1, "The start, "))
    between = await inbound_texts(runtime, app)
    await deliver(runtime, app, part(2, "the middle, "))

    assert between == []
    assert await inbound_texts(runtime, app) == ["The start, the middle, the end."]
    assert await pending(runtime) == 0


async def test_parts_arriving_in_one_batch_make_one_message(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app = await make_app(runtime, tenants)

    await deliver(runtime, app, part(2, "world", total=2), part(1, "Hello ", total=2))

    assert await inbound_texts(runtime, app) == ["Hello world"]


async def test_a_part_delivered_twice_is_kept_once(runtime: Runtime,
                                                   tenants: TenantFactory) -> None:
    app = await make_app(runtime, tenants)

    first = await deliver(runtime, app, part(1, "The start, "))
    again = await deliver(runtime, app, part(1, "The start, "))

    assert (first.inbound, again.unchanged) == (1, 1)
    assert await pending(runtime) == 1


async def test_messages_with_other_references_or_senders_are_not_mixed(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app = await make_app(runtime, tenants)

    await deliver(runtime, app, part(1, "A1 ", total=2), part(1, "B1 ", total=2, reference=7),
                  part(1, "C1 ", total=2, sender="+14155550999"))
    await deliver(runtime, app, part(2, "B2", total=2, reference=7),
                  part(2, "A2", total=2))

    assert sorted(await inbound_texts(runtime, app)) == ["A1 A2", "B1 B2"]
    assert await pending(runtime) == 1


async def test_a_message_whose_other_parts_are_a_minute_late_is_stored_with_what_came(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock) -> None:
    app = await make_app(runtime, tenants)
    await deliver(runtime, app, part(3, "the end."), part(1, "The start, "))

    clock.advance(59)
    async with runtime.sessions() as session:
        early = await store_overdue_inbound_parts(session, runtime.clock())
    clock.advance(1)
    async with runtime.sessions() as session:
        late = await store_overdue_inbound_parts(session, runtime.clock())
        await session.commit()

    assert (early, late) == (0, 1)
    assert await inbound_texts(runtime, app) == ["The start, the end."]
    assert await pending(runtime) == 0
