"""Live events for connected phones: fan-out by device id, in one process or across nodes
through Redis pub/sub, with bounded queues that drop the oldest event.

The Redis cases use the Redis at ``TIDINGS_TEST_REDIS_URL`` (default 127.0.0.1:6379/15), each
on its own channel, and are skipped when it does not answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tidings.pipeline.device_events import (
    DeviceEvent,
    DeviceEventHub,
    LocalDeviceEventHub,
    RedisDeviceEventHub,
    device_event_hub,
)

REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DEADLINE = 5.0  # seconds to wait for an event that should arrive

ENQUEUED = DeviceEvent("MessageEnqueued")
CANCELLED = DeviceEvent("MessageCancelled", {"messageId": "V1StGXR8_Z5jdHi6B-myT"})
MARKER = DeviceEvent("SettingsUpdated")

HubFactory = Callable[..., Awaitable[DeviceEventHub]]


async def _redis_answers() -> bool:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        return bool(await client.echo("ping"))
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def channel() -> str:
    if not await _redis_answers():
        pytest.skip(f"no Redis at {REDIS_URL}")
    return f"tidings-test:device-events:{secrets.token_hex(6)}"


@pytest.fixture(params=["local", "redis"])
async def make_hub(request: pytest.FixtureRequest) -> AsyncIterator[HubFactory]:
    """Builds started hubs of one kind; a Redis hub per call is a node sharing one channel."""
    hubs: list[DeviceEventHub] = []
    channel = f"tidings-test:device-events:{secrets.token_hex(6)}"
    if request.param == "redis" and not await _redis_answers():
        pytest.skip(f"no Redis at {REDIS_URL}")

    async def make(queue_size: int = 100) -> DeviceEventHub:
        hub: DeviceEventHub
        if request.param == "local":
            hub = LocalDeviceEventHub(queue_size=queue_size)
        else:
            hub = RedisDeviceEventHub.from_url(REDIS_URL, channel=channel,
                                               queue_size=queue_size)
        await hub.start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.close()


async def _next(queue: asyncio.Queue[DeviceEvent]) -> DeviceEvent:
    return await asyncio.wait_for(queue.get(), DEADLINE)


# --- both hubs ----------------------------------------------------------------------------------


async def test_a_subscriber_gets_the_events_for_its_device_only(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe("phone-a") as phone_a, hub.subscribe("phone-b") as phone_b:
        await hub.publish(["phone-b"], ENQUEUED)
        await hub.publish(["phone-a"], CANCELLED)

        assert await _next(phone_a) == CANCELLED
        assert await _next(phone_b) == ENQUEUED
        assert phone_a.empty()
        assert phone_b.empty()


async def test_an_event_for_several_devices_reaches_each(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe("phone-a") as phone_a, hub.subscribe("phone-b") as phone_b:
        await hub.publish(["phone-a", "phone-b", "phone-a"], ENQUEUED)

        assert [await _next(phone_a), await _next(phone_b)] == [ENQUEUED, ENQUEUED]
        await hub.publish(["phone-a"], MARKER)
        assert await _next(phone_a) == MARKER  # a repeated id did not deliver twice


async def test_two_connections_of_one_device_both_get_the_event(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe("phone-a") as first, hub.subscribe("phone-a") as second:
        await hub.publish(["phone-a"], CANCELLED)

        assert [await _next(first), await _next(second)] == [CANCELLED, CANCELLED]


async def test_leaving_the_subscription_stops_delivery(make_hub: HubFactory) -> None:
    hub = await make_hub()
    async with hub.subscribe("phone-b") as phone_b:
        async with hub.subscribe("phone-a") as gone:
            pass
        await hub.publish(["phone-a"], ENQUEUED)
        await hub.publish(["phone-b"], MARKER)

        assert await _next(phone_b) == MARKER  # published after, so the first one was handled
        assert gone.empty()


async def test_a_full_queue_drops_its_oldest_event(make_hub: HubFactory) -> None:
    hub = await make_hub(queue_size=3)
    events = [DeviceEvent("MessageCancelled", {"messageId": f"m{n}"}) for n in range(5)]
    async with hub.subscribe("phone-a") as slow, hub.subscribe("phone-b") as phone_b:
        for event in events:
            await hub.publish(["phone-a"], event)
        await hub.publish(["phone-b"], MARKER)
        assert await _next(phone_b) == MARKER

        assert [slow.get_nowait() for _ in range(slow.qsize())] == events[2:]


async def test_publishing_to_a_device_nobody_listens_to_does_nothing(
        make_hub: HubFactory) -> None:
    hub = await make_hub()
    await hub.publish(["offline-phone"], ENQUEUED)
    await hub.publish([], ENQUEUED)
    async with hub.subscribe("offline-phone") as late:
        assert late.empty()


# --- Redis across nodes -------------------------------------------------------------------------


async def test_an_event_published_on_one_node_reaches_a_phone_on_another(channel: str) -> None:
    async with AsyncExitStack() as stack:
        node_one = RedisDeviceEventHub.from_url(REDIS_URL, channel=channel)
        node_two = RedisDeviceEventHub.from_url(REDIS_URL, channel=channel)
        for node in (node_one, node_two):
            await node.start()
            stack.push_async_callback(node.close)
        on_one = await stack.enter_async_context(node_one.subscribe("phone-a"))
        on_two = await stack.enter_async_context(node_two.subscribe("phone-b"))

        await node_one.publish(["phone-b"], CANCELLED)
        await node_two.publish(["phone-a"], ENQUEUED)

        assert await _next(on_two) == CANCELLED
        assert await _next(on_one) == ENQUEUED


async def test_the_wire_message_is_json_with_device_ids_type_and_data(channel: str) -> None:
    raw = Redis.from_url(REDIS_URL)
    pubsub = raw.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    hub = RedisDeviceEventHub.from_url(REDIS_URL, channel=channel)
    try:
        await hub.publish(["phone-a", "phone-b"], CANCELLED)
        message: dict[str, Any] | None = None
        async with asyncio.timeout(DEADLINE):
            while message is None:
                message = await pubsub.get_message(timeout=1.0)
    finally:
        await hub.close()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await raw.aclose()

    assert json.loads(message["data"]) == {
        "device_ids": ["phone-a", "phone-b"],
        "type": "MessageCancelled",
        "data": {"messageId": "V1StGXR8_Z5jdHi6B-myT"},
    }


async def test_a_malformed_message_on_the_channel_is_skipped(channel: str) -> None:
    hub = RedisDeviceEventHub.from_url(REDIS_URL, channel=channel)
    raw = Redis.from_url(REDIS_URL)
    await hub.start()
    try:
        async with hub.subscribe("phone-a") as phone_a:
            for junk in ("not json", '{"type": "X"}', '{"device_ids": "phone-a", "type": "X"}'):
                await raw.publish(channel, junk)
            await hub.publish(["phone-a"], MARKER)

            assert await _next(phone_a) == MARKER
    finally:
        await hub.close()
        await raw.aclose()


async def test_the_listener_resubscribes_when_redis_drops_its_connection(channel: str) -> None:
    name = f"tidings-test-{secrets.token_hex(4)}"
    hub = RedisDeviceEventHub(Redis.from_url(REDIS_URL, client_name=name), channel=channel)
    admin = Redis.from_url(REDIS_URL)
    await hub.start()
    try:
        async with hub.subscribe("phone-a") as phone_a:
            killed = 0
            for client in await admin.client_list():
                if client.get("name") == name:
                    killed += await admin.client_kill_filter(_id=client["id"])
            assert killed >= 1

            received: DeviceEvent | None = None
            async with asyncio.timeout(DEADLINE):
                while received is None:  # events sent while it reconnects may be lost
                    await hub.publish(["phone-a"], MARKER)
                    try:
                        received = await asyncio.wait_for(phone_a.get(), 0.1)
                    except TimeoutError:
                        pass
            assert received == MARKER
    finally:
        await hub.close()
        await admin.aclose()


async def test_when_redis_does_not_answer_events_still_reach_this_node() -> None:
    hub = RedisDeviceEventHub.from_url("redis://127.0.0.1:1/0")
    try:
        async with hub.subscribe("phone-a") as phone_a:
            await hub.publish(["phone-a"], ENQUEUED)

            assert phone_a.get_nowait() == ENQUEUED
    finally:
        await hub.close()


# --- choosing a hub -----------------------------------------------------------------------------


async def test_without_a_redis_url_the_hub_is_local() -> None:
    assert isinstance(device_event_hub(None), LocalDeviceEventHub)


async def test_with_a_redis_url_the_hub_is_redis() -> None:
    hub = device_event_hub("redis://127.0.0.1:6379/15")
    assert isinstance(hub, RedisDeviceEventHub)
    await hub.close()
