"""Group commit (``MessageIngest``): concurrent submissions share one transaction, each returns
only once its rows are committed, a duplicate ``client_ref`` fails only its own submission, and
``stop`` finishes everything that was submitted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import TenantFactory
from tidings.db.models import ChannelAccount, Message
from tidings.errors import Conflict
from tidings.pipeline.ingest import MessageIngest
from tidings.runtime import Runtime
from tidings.services.sms_apps import SmsAppFields, create_sms_app
from tidings.services.sms_send import (
    PendingMessage,
    Sender,
    SendPlan,
    SendRequest,
    build_message_row,
    store_messages,
)

DEADLINE = 10.0


class RecordingStore:
    """``store_messages``, recording how many rows each transaction tried to store; ``gate``,
    when cleared, holds every transaction inside the store until it is set."""

    def __init__(self) -> None:
        self.transactions: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def __call__(self, session: AsyncSession, items: Sequence[PendingMessage],
                       now: datetime) -> None:
        self.entered.set()
        await self.gate.wait()
        self.transactions.append(len(items))
        await store_messages(session, items, now)


@pytest.fixture
async def account(runtime: Runtime, tenants: TenantFactory) -> ChannelAccount:
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant.tenant_id,
            fields=SmsAppFields(name="Sim", provider="SIMULATOR", sender_id="Tidings"),
            default_rate_limit="100/min", now=runtime.clock())
        await session.commit()
    return app


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
async def ingest(runtime: Runtime, store: RecordingStore) -> AsyncIterator[MessageIngest]:
    writer = MessageIngest(runtime.sessions, store, runtime.clock)
    writer.start()
    yield writer
    await writer.stop()


def message(runtime: Runtime, account: ChannelAccount, text: str,
            client_ref: str | None = None) -> PendingMessage:
    return build_message_row(
        SendPlan(app=account, template_body=None),
        Sender(tenant_id=account.tenant_id, default_region="US", mode="live"),
        SendRequest(phone="+14155550100", text=text, client_ref=client_ref),
        now=runtime.clock(), max_segments=10)


async def stored_texts(runtime: Runtime) -> list[str]:
    async with runtime.sessions() as session:
        return sorted((await session.execute(select(Message.text))).scalars())


async def test_concurrent_submissions_are_committed_together_in_one_transaction(
        runtime: Runtime, account: ChannelAccount, ingest: MessageIngest,
        store: RecordingStore) -> None:
    texts = [f"hello {i}" for i in range(5)]

    await asyncio.gather(*(ingest.submit([message(runtime, account, text)]) for text in texts))

    assert store.transactions == [5]
    assert await stored_texts(runtime) == texts


async def test_a_submission_returns_only_once_its_rows_are_committed(
        runtime: Runtime, account: ChannelAccount, ingest: MessageIngest,
        store: RecordingStore) -> None:
    store.gate.clear()
    submitted = asyncio.create_task(ingest.submit([message(runtime, account, "on disk")]))
    await asyncio.wait_for(store.entered.wait(), DEADLINE)
    await asyncio.sleep(0)

    assert not submitted.done()
    store.gate.set()
    await asyncio.wait_for(submitted, DEADLINE)
    assert await stored_texts(runtime) == ["on disk"]


async def test_a_batch_holds_at_most_max_batch_rows(
        runtime: Runtime, account: ChannelAccount, store: RecordingStore) -> None:
    writer = MessageIngest(runtime.sessions, store, runtime.clock, max_batch=3)
    writer.start()
    try:
        await asyncio.gather(*(writer.submit([message(runtime, account, f"m{i}")])
                               for i in range(7)))
    finally:
        await writer.stop()

    assert store.transactions == [3, 3, 1]


async def test_a_duplicate_client_ref_in_a_batch_fails_only_that_submission(
        runtime: Runtime, account: ChannelAccount, ingest: MessageIngest,
        store: RecordingStore) -> None:
    batch = [message(runtime, account, "first", "order-7"),
             message(runtime, account, "other"),
             message(runtime, account, "again", "order-7"),
             message(runtime, account, "last")]

    outcomes = await asyncio.gather(*(ingest.submit([item]) for item in batch),
                                    return_exceptions=True)

    assert outcomes[:2] == [None, None]
    assert outcomes[3] is None
    duplicate = outcomes[2]
    assert isinstance(duplicate, Conflict)
    assert duplicate.code == "duplicate_client_ref"
    assert "order-7" in duplicate.detail
    assert await stored_texts(runtime) == ["first", "last", "other"]
    assert store.transactions == [4, 1, 1, 1, 1]  # the batch rolled back, then one by one


async def test_stop_waits_for_the_batch_being_committed(
        runtime: Runtime, account: ChannelAccount, store: RecordingStore) -> None:
    writer = MessageIngest(runtime.sessions, store, runtime.clock)
    writer.start()
    store.gate.clear()
    submitted = [asyncio.create_task(writer.submit([message(runtime, account, f"m{i}")]))
                 for i in range(3)]
    await asyncio.wait_for(store.entered.wait(), DEADLINE)  # the batch is being written

    stopping = asyncio.create_task(writer.stop())
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.wait_for(stopping, DEADLINE)

    await asyncio.wait_for(asyncio.gather(*submitted), DEADLINE)
    assert store.transactions == [3]
    assert await stored_texts(runtime) == ["m0", "m1", "m2"]


async def test_stop_drains_the_submissions_still_waiting_then_refuses_more(
        runtime: Runtime, account: ChannelAccount, store: RecordingStore) -> None:
    writer = MessageIngest(runtime.sessions, store, runtime.clock, max_batch=2)
    writer.start()
    submitted = [asyncio.create_task(writer.submit([message(runtime, account, f"m{i}")]))
                 for i in range(5)]
    await asyncio.sleep(0)  # all five are waiting

    await asyncio.wait_for(writer.stop(), DEADLINE)

    await asyncio.wait_for(asyncio.gather(*submitted), DEADLINE)
    assert store.transactions == [2, 2, 1]
    assert await stored_texts(runtime) == [f"m{i}" for i in range(5)]
    with pytest.raises(RuntimeError, match="not running"):
        await writer.submit([message(runtime, account, "too late")])


async def test_each_commit_is_announced(
        runtime: Runtime, account: ChannelAccount, store: RecordingStore) -> None:
    commits: list[int] = []
    writer = MessageIngest(runtime.sessions, store, runtime.clock,
                           on_commit=lambda: commits.append(len(store.transactions)))
    writer.start()
    try:
        await writer.submit([message(runtime, account, "one")])
        await writer.submit([message(runtime, account, "two")])
    finally:
        await writer.stop()

    assert commits == [1, 2]
