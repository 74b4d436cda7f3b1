"""SMPP apps through the whole worker: an app made as the API makes it (password encrypted),
messages queued as the API queues them, the worker set's dispatcher binding the app to a real
SMSC on loopback (``tests/smsc``) and sending, and what the SMSC sends back (receipts, inbound
messages) stored through the worker's report writer until the messages are delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import TenantFactory
from tests.pipeline.test_dispatcher import count_in_state, load, queue
from tests.smsc.processes import SMSC_KINDS, SmscKind, free_port, run_smsc
from tidings.db.models import ChannelAccount, Message, MessageEvent, MessagePart
from tidings.pipeline.workers import WorkerSet
from tidings.runtime import Runtime
from tidings.services.sms_apps import SmsAppFields, create_sms_app

PASSWORD = "s3cret"
DEADLINE = 20.0


async def smpp_app(runtime: Runtime, tenants: TenantFactory, port: int,
                   **config: Any) -> ChannelAccount:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant.tenant_id,
            fields=SmsAppFields(
                name="SMSC", provider="SMPP", sender_id="ACME",
                provider_credentials={"password": PASSWORD},
                provider_config={"host": "127.0.0.1", "port": port, "system_id": "tidings",
                                 "reconnect_min_seconds": 0.05,
                                 "reconnect_max_seconds": 0.2, **config},
                rate_limit="100000/min"),
            default_rate_limit=runtime.settings.sms_rate_limit, now=runtime.clock())
        await session.commit()
    return app


@asynccontextmanager
async def worker(runtime: Runtime) -> AsyncIterator[WorkerSet]:
    """The worker process's workers (dispatcher with its binds, report writer), no jobs."""
    workers = WorkerSet(runtime, [])
    await workers.start()
    try:
        yield workers
    finally:
        await workers.stop()


async def until_in_state(runtime: Runtime, app: ChannelAccount, state: str,
                         count: int) -> None:
    async with asyncio.timeout(DEADLINE):
        while await count_in_state(runtime, app.id, state) < count:
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", SMSC_KINDS)
async def test_queued_messages_go_out_through_the_bind_and_their_receipts_deliver_them(
        runtime: Runtime, tenants: TenantFactory, tmp_path: Path, kind: SmscKind) -> None:
    with run_smsc(kind, {}, tmp_path) as smsc:
        app = await smpp_app(runtime, tenants, smsc.port)
        ids = await queue(runtime, app, 50)
        async with worker(runtime):
            await until_in_state(runtime, app, "delivered", 50)
        submitted = smsc.events("submit_sm")

    messages = await load(runtime, ids)
    assert {message.state for message in messages} == {"delivered"}
    assert sorted(message.provider_message_id or "" for message in messages) == sorted(
        submit["message_id"] for submit in submitted)
    assert sorted(bytes.fromhex(submit["short_message_hex"]).decode()
                  for submit in submitted) == sorted(m.text for m in messages)


async def test_a_long_message_is_delivered_once_the_receipt_of_every_part_is_in(
        runtime: Runtime, tenants: TenantFactory, tmp_path: Path) -> None:
    text = "This message is long enough to need three parts. " * 8  # 400 septets
    with run_smsc("smpp34", {}, tmp_path) as smsc:
        app = await smpp_app(runtime, tenants, smsc.port)
        [message_id] = await queue(runtime, app, texts=[text])
        async with worker(runtime):
            await until_in_state(runtime, app, "delivered", 1)
        part_ids = [submit["message_id"] for submit in smsc.events("submit_sm")]

    async with runtime.sessions() as session:
        parts = (await session.execute(select(MessagePart).where(
            MessagePart.message_id == message_id).order_by(MessagePart.part))).scalars().all()
        history = (await session.execute(select(MessageEvent.kind).where(
            MessageEvent.message_id == message_id).order_by(MessageEvent.id))).scalars().all()
    assert [(p.provider_message_id, p.state) for p in parts] == [
        (id_, "delivered") for id_ in part_ids]
    assert len(part_ids) == 3
    assert history.count("part_report") == 3
    assert history[-1] == "report"  # the message's own, once all three were in


async def test_an_inbound_message_is_stored_for_the_apps_tenant(
        runtime: Runtime, tenants: TenantFactory, tmp_path: Path) -> None:
    scenario = {"mo": [{"source_addr": "14155550123", "destination_addr": "12345",
                        "short_message_hex": b"STOP".hex(), "data_coding": 0,
                        "esm_class": 0}]}
    with run_smsc("smpp34", scenario, tmp_path) as smsc:
        app = await smpp_app(runtime, tenants, smsc.port)
        async with worker(runtime):
            await until_in_state(runtime, app, "received", 1)
            acknowledged = await smsc.until("mo", check=lambda events: events[0][
                "status"] is not None)

    async with runtime.sessions() as session:
        [inbound] = (await session.execute(select(Message).where(
            Message.channel_account_id == app.id))).scalars().all()
    assert (inbound.direction, inbound.tenant_id, inbound.from_number, inbound.to_number,
            inbound.text) == ("inbound", app.tenant_id, "+14155550123", "12345", "STOP")
    assert acknowledged[0]["status"] == 0  # acknowledged once stored


async def test_while_the_smsc_is_unreachable_live_messages_wait_in_the_queue_unclaimed(
        runtime: Runtime, tenants: TenantFactory, tmp_path: Path) -> None:
    port = free_port()
    app = await smpp_app(runtime, tenants, port)
    ids = await queue(runtime, app, 5)
    async with worker(runtime):
        await asyncio.sleep(0.5)  # the binds keep failing meanwhile
        waiting = await load(runtime, ids)
        with run_smsc("smpp34", {}, tmp_path, port=port):
            await until_in_state(runtime, app, "delivered", 5)

    assert {(message.state, message.attempts) for message in waiting} == {("queued", 0)}


@pytest.mark.parametrize("kind", SMSC_KINDS)
async def test_a_long_inbound_message_is_stored_as_one_once_its_parts_are_in(
        runtime: Runtime, tenants: TenantFactory, tmp_path: Path, kind: SmscKind) -> None:
    first, second = "Q" * 153, "...and a question at the end?"
    scenario = {"mo": [
        {"source_addr": "14155550123", "destination_addr": "12345", "data_coding": 0,
         "esm_class": 0x40, "short_message_hex": "050003" "07" "02" "01" + first.encode().hex()},
        {"source_addr": "14155550123", "destination_addr": "12345", "data_coding": 0,
         "esm_class": 0x40, "short_message_hex": "050003" "07" "02" "02" + second.encode().hex()},
    ]}
    with run_smsc(kind, scenario, tmp_path) as smsc:
        app = await smpp_app(runtime, tenants, smsc.port)
        async with worker(runtime):
            await until_in_state(runtime, app, "received", 1)

    async with runtime.sessions() as session:
        [inbound] = (await session.execute(select(Message).where(
            Message.channel_account_id == app.id))).scalars().all()
    assert inbound.text == first + second


@pytest.mark.parametrize(("config", "window"), [
    ({}, 512),  # 16 times its bind's 32 outstanding submits
    ({"window": 2}, 64),  # never below the dispatcher's own window
    ({"window": 20, "binds": 2}, 640),
], ids=["default", "small-window", "two-binds"])
async def test_the_dispatcher_claims_enough_of_an_smpp_apps_messages_to_keep_its_binds_busy(
        runtime: Runtime, tenants: TenantFactory, tmp_path: Path, config: dict[str, Any],
        window: int) -> None:
    with run_smsc("smpp34", {"response_delay_ms": 1500, "receipts": False}, tmp_path) as smsc:
        app = await smpp_app(runtime, tenants, smsc.port, **config)
        await queue(runtime, app, 700)
        async with worker(runtime):
            await until_in_state(runtime, app, "sending", window)
            await asyncio.sleep(0.3)  # the SMSC is still holding every answer
            claimed = await count_in_state(runtime, app.id, "sending")
            smsc.kill()  # the sends in hand end at once (link lost), not 1.5 s at a time

    assert claimed == window
