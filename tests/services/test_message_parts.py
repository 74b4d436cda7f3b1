"""Long messages whose provider gives an id per part (SMPP submits each part alone): every
part's id is kept, each part's receipt is recorded against its part, and the message's state is
the parts' together: delivered once every part is, failed as soon as one fails."""

from __future__ import annotations

import random
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from tests.conftest import TenantFactory
from tidings.db.models import ChannelAccount, Message, MessageEvent, MessagePart
from tidings.domain.states import MessageState
from tidings.pipeline.outcomes import Attempt, OutcomeRecorder, retry_policy
from tidings.providers.base import Accepted, StatusUpdate
from tidings.runtime import Runtime
from tidings.services.reports import ReportSummary, apply_webhook_events
from tidings.services.sms_apps import SmsAppFields, create_sms_app
from tidings.services.sms_send import (
    Sender,
    SendPlan,
    SendRequest,
    build_message_row,
    store_messages,
)

LONG_TEXT = "A long message. " * 20  # 320 GSM-7 characters: 3 parts
PART_IDS = ("1000", "1001", "1002")
DELIVRD = MessageState.DELIVERED
UNDELIV = MessageState.FAILED


async def sending_message(runtime: Runtime, tenants: TenantFactory
                          ) -> tuple[ChannelAccount, Message]:
    """A 3-part message claimed for sending (state ``sending``), through a new app."""
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant.tenant_id,
            fields=SmsAppFields(name="SMSC", provider="SIMULATOR", sender_id="ACME",
                                provider_credentials={}, provider_config={}),
            default_rate_limit="100/min", now=runtime.clock())
        row = build_message_row(SendPlan(app=app, template_body=None),
                                Sender(tenant.tenant_id, "US", "live"),
                                SendRequest(phone="+14155550100", text=LONG_TEXT),
                                now=runtime.clock(), max_segments=10)
        await store_messages(session, [row], runtime.clock())
        message_id = str(row.row["id"])
        await session.execute(update(Message).where(Message.id == message_id).values(
            state="sending", attempts=1))
        await session.commit()
        message = await session.get_one(Message, message_id)
    return app, message


async def record_accepted(runtime: Runtime, app: ChannelAccount, message: Message,
                          provider_ids: Sequence[str]) -> None:
    """The dispatcher's recording of the provider's ``Accepted`` with these ids."""
    recorder = OutcomeRecorder(retry_policy(runtime.settings), random.Random(1),
                               postgresql=runtime.engine.dialect.name == "postgresql")
    async with runtime.sessions() as session:
        await recorder.record(session, [Attempt(message, app, ZoneInfo("UTC"),
                                                Accepted(tuple(provider_ids)), False)],
                              runtime.clock(), {app.id: app})
        await session.commit()


async def receipt(runtime: Runtime, app: ChannelAccount, provider_id: str,
                  state: MessageState, word: str, error_code: str | None = None
                  ) -> ReportSummary:
    async with runtime.sessions() as session:
        summary = await apply_webhook_events(
            session, app, [StatusUpdate(provider_id, state, word, error_code)], runtime.clock())
        await session.commit()
    return summary


async def reload(runtime: Runtime, message_id: str) -> Message:
    async with runtime.sessions() as session:
        return await session.get_one(Message, message_id)


async def parts_of(runtime: Runtime, message_id: str) -> list[tuple[int, str, str]]:
    async with runtime.sessions() as session:
        rows = (await session.execute(select(MessagePart).where(
            MessagePart.message_id == message_id).order_by(MessagePart.part))).scalars()
        return [(part.part, part.provider_message_id, part.state) for part in rows]


async def test_every_part_id_is_kept_when_the_provider_gives_one_per_part(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app, message = await sending_message(runtime, tenants)

    await record_accepted(runtime, app, message, PART_IDS)

    assert await parts_of(runtime, message.id) == [
        (1, "1000", "sent"), (2, "1001", "sent"), (3, "1002", "sent")]
    assert (await reload(runtime, message.id)).provider_message_id == "1000"


async def test_a_message_with_one_provider_id_has_no_parts_and_takes_its_report_directly(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app, message = await sending_message(runtime, tenants)
    await record_accepted(runtime, app, message, ["1000"])

    await receipt(runtime, app, "1000", DELIVRD, "DELIVRD")

    assert await parts_of(runtime, message.id) == []
    assert (await reload(runtime, message.id)).state == "delivered"


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)],
                         ids=["in-order", "last-first", "middle-first"])
async def test_the_message_is_delivered_only_once_every_part_is(
        runtime: Runtime, tenants: TenantFactory, order: tuple[int, ...]) -> None:
    app, message = await sending_message(runtime, tenants)
    await record_accepted(runtime, app, message, PART_IDS)

    seen = []
    for index in order:
        await receipt(runtime, app, PART_IDS[index], DELIVRD, "DELIVRD")
        seen.append((await reload(runtime, message.id)).state)

    assert seen == ["sent", "sent", "delivered"]
    assert [state for _, _, state in await parts_of(runtime, message.id)] == ["delivered"] * 3


async def test_one_failed_part_fails_the_message_with_that_parts_status_and_error(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app, message = await sending_message(runtime, tenants)
    await record_accepted(runtime, app, message, PART_IDS)

    await receipt(runtime, app, "1000", DELIVRD, "DELIVRD")
    await receipt(runtime, app, "1001", UNDELIV, "UNDELIV", error_code="001")

    failed = await reload(runtime, message.id)
    assert (failed.state, failed.error_code, failed.error_detail) == (
        "failed", "001", "part 2 of 3: UNDELIV")
    await receipt(runtime, app, "1002", DELIVRD, "DELIVRD")  # a later part changes nothing
    assert (await reload(runtime, message.id)).state == "failed"


async def test_each_parts_receipt_is_in_the_history_and_a_repeated_one_is_not(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app, message = await sending_message(runtime, tenants)
    await record_accepted(runtime, app, message, PART_IDS)

    first = await receipt(runtime, app, "1001", DELIVRD, "DELIVRD")
    again = await receipt(runtime, app, "1001", DELIVRD, "DELIVRD")

    assert (first.applied, again.unchanged) == (1, 1)
    async with runtime.sessions() as session:
        history = (await session.execute(select(MessageEvent).where(
            MessageEvent.message_id == message.id,
            MessageEvent.kind == "part_report"))).scalars().all()
    assert [event.detail for event in history] == [
        {"part": 2, "parts": 3, "provider_message_id": "1001", "provider_status": "DELIVRD"}]


async def test_part_receipts_that_come_before_the_send_is_recorded_are_applied_when_it_is(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app, message = await sending_message(runtime, tenants)
    early = [await receipt(runtime, app, provider_id, DELIVRD, "DELIVRD")
             for provider_id in PART_IDS]  # an SMSC answers faster than the outcome is written

    await record_accepted(runtime, app, message, PART_IDS)

    assert [summary.unmatched for summary in early] == [1, 1, 1]
    assert (await reload(runtime, message.id)).state == "delivered"


async def test_a_message_accepted_again_after_a_retry_keeps_only_the_new_parts(
        runtime: Runtime, tenants: TenantFactory) -> None:
    app, message = await sending_message(runtime, tenants)
    await record_accepted(runtime, app, message, PART_IDS)
    async with runtime.sessions() as session:  # requeued and claimed again
        await session.execute(update(Message).where(Message.id == message.id).values(
            state="sending"))
        await session.commit()

    await record_accepted(runtime, app, message, ["2000", "2001"])

    assert await parts_of(runtime, message.id) == [(1, "2000", "sent"), (2, "2001", "sent")]
