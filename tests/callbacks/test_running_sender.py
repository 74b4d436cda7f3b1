"""The callback sender as the workers run it (``CallbackSender.run``): it keeps its window of
deliveries in flight, refills it as they finish, keeps each message's callbacks in order, and
on ``stop()`` records what it still had in flight before it ends."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.callbacks.steps import Receiver, add_endpoint, report, sent_message, stored_deliveries
from tests.conftest import TenantFactory
from tidings.config import Settings
from tidings.pipeline import callbacks
from tidings.pipeline.callbacks import CallbackSender
from tidings.runtime import Runtime

WINDOW = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"callback_window": WINDOW})


@pytest.fixture
def no_idle_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle sender looks again only when woken (within the test's time)."""
    monkeypatch.setattr(callbacks, "IDLE_POLL_SECONDS", 60.0)


@pytest.fixture
async def running(sender: CallbackSender) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sender.run())
    try:
        yield task
    finally:
        sender.stop()
        await asyncio.wait_for(task, 10)


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_more_callbacks_than_the_window_all_arrive_in_order_per_message(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks")
    first = await sent_message(runtime, tenant, "prov-0")
    messages = [first.message_id] + [
        (await sent_message(runtime, tenant, f"prov-{n}", app_id=first.app_id)).message_id
        for n in range(1, 6)]
    for n in range(6):
        await report(runtime, f"prov-{n}", "delivered", "DELIVRD")
        await report(runtime, f"prov-{n}", "read", "READ")
    task = asyncio.create_task(sender.run())

    await _until(lambda: len(fake.requests) >= 12)
    sender.stop()
    await asyncio.wait_for(task, 10)

    states: dict[str, list[str]] = defaultdict(list)
    for request in fake.requests:
        data = json.loads(request.body)["data"]
        states[data["id"]].append(data["state"])
    assert states == {message_id: ["delivered", "read"] for message_id in messages}
    assert {row.state for row in await stored_deliveries(runtime)} == {"delivered"}
    assert sender.delivered == 12


async def test_a_callback_queued_while_running_is_sent_when_the_sender_is_woken(
        no_idle_poll: None, runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver, running: asyncio.Task[None]) -> None:
    fake, base_url = receiver
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks")
    await sent_message(runtime, tenant, "prov-1")
    await asyncio.sleep(0.1)  # the sender has looked and found nothing

    await report(runtime, "prov-1", "delivered", "DELIVRD")
    sender.wake()

    await _until(lambda: len(fake.requests) == 1, seconds=5)


async def test_stopping_records_the_deliveries_still_in_flight(
        runtime: Runtime, sender: CallbackSender, tenants: TenantFactory,
        receiver: Receiver) -> None:
    fake, base_url = receiver
    fake.delays = [0.3]
    tenant = await tenants.create()
    await add_endpoint(runtime, tenant, f"{base_url}/hooks")
    await sent_message(runtime, tenant, "prov-1")
    await report(runtime, "prov-1", "delivered", "DELIVRD")
    task = asyncio.create_task(sender.run())
    await _until(lambda: len(fake.requests) == 1)  # received; the answer is 0.3 s away

    sender.stop()
    await asyncio.wait_for(task, 5)

    [row] = await stored_deliveries(runtime)
    assert (row.state, row.attempts, row.last_status_code) == ("delivered", 1, 200)


class CountingTurn:
    """The runtime's write turn, counting how often it is taken."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.taken = 0

    async def __aenter__(self) -> None:
        self.taken += 1
        await self.inner.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)


async def test_a_sender_woken_with_nothing_due_does_not_take_the_write_turn(
        runtime: Runtime, sender: CallbackSender, no_idle_poll: None) -> None:
    turn = CountingTurn(runtime.write_turn)
    runtime.write_turn = turn
    task = asyncio.create_task(sender.run())
    try:
        for _ in range(5):  # every report commit wakes it, callbacks queued or not
            sender.wake()
            await asyncio.sleep(0.02)
    finally:
        sender.stop()
        await asyncio.wait_for(task, 10)

    assert turn.taken == 0
