"""Live events for connected phones: the hub behind GET /mobile/v1/events (SSE).

A service publishes a ``DeviceEvent`` (``MessageEnqueued``, ``MessageCancelled{messageId}``,
``WebhooksUpdated``, ``SettingsUpdated``, ``MessagesExportRequested{...}``) to some device ids;
every open events stream of those devices gets it on its queue. Events are wake-up hints: a
phone that misses one (it was offline, its queue overflowed, Redis was reconnecting) catches
up on its next pull, so delivery is best effort and never blocks the publisher.

Two hubs behind one Protocol:

- ``LocalDeviceEventHub``: fan-out in this process; enough for one node.
- ``RedisDeviceEventHub``: publishes on the Redis pub/sub channel ``tidings:device-events`` as
  JSON ``{"device_ids": [...], "type": ..., "data": ...}``; each process runs one listener task
  that hands what arrives to its own local subscribers, so a phone connected to any node gets
  the event. The listener logs and resubscribes, with a short backoff, when Redis drops it.

Each subscription has a bounded queue (100 events by default). When it is full the oldest
event is dropped to make room: a slow or stalled phone must never stall the API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "tidings:device-events"
QUEUE_SIZE = 100


@dataclass(frozen=True)
class DeviceEvent:
    """One event for a phone: its SSE event name and its JSON data (None is sent as ``{}``)."""

    type: str
    data: Mapping[str, Any] | None = None


class DeviceEventHub(Protocol):
    async def publish(self, device_ids: Sequence[str], event: DeviceEvent) -> None:
        """Send ``event`` to every open stream of each of ``device_ids``; never blocks on a
        slow subscriber and never raises for a delivery problem (it logs)."""
        ...

    def subscribe(self, device_id: str) -> AbstractAsyncContextManager[
            asyncio.Queue[DeviceEvent]]:
        """A queue of the events for ``device_id`` while the context is open (one per
        connection; a device may hold several)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class _Subscribers:
    """The queues of this process's open event streams, by device id."""

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._queues: dict[str, set[asyncio.Queue[DeviceEvent]]] = {}

    @asynccontextmanager
    async def subscribe(self, device_id: str) -> AsyncIterator[asyncio.Queue[DeviceEvent]]:
        queue: asyncio.Queue[DeviceEvent] = asyncio.Queue(self._queue_size)
        self._queues.setdefault(device_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._queues.get(device_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._queues[device_id]

    def deliver(self, device_ids: Sequence[str], event: DeviceEvent) -> None:
        for device_id in dict.fromkeys(device_ids):
            for queue in tuple(self._queues.get(device_id, ())):
                _put_dropping_oldest(queue, event, device_id)


def _put_dropping_oldest(queue: asyncio.Queue[DeviceEvent], event: DeviceEvent,
                         device_id: str) -> None:
    while True:
        try:
            queue.put_nowait(event)
            return
        except asyncio.QueueFull:
            try:
                dropped = queue.get_nowait()
            except asyncio.QueueEmpty:  # pragma: no cover - a full queue is not empty
                continue
            log.warning("device events: queue full for device %s; dropped %s",
                        device_id, dropped.type)


class LocalDeviceEventHub:
    """Fan-out inside this process: every subscriber of a device id gets each event."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._subscribers = _Subscribers(queue_size)

    async def publish(self, device_ids: Sequence[str], event: DeviceEvent) -> None:
        self._subscribers.deliver(device_ids, event)

    def subscribe(self, device_id: str) -> AbstractAsyncContextManager[
            asyncio.Queue[DeviceEvent]]:
        return self._subscribers.subscribe(device_id)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisDeviceEventHub:
    """Fan-out across nodes through Redis pub/sub (``TIDINGS_REDIS_URL``).

    ``publish`` sends to Redis only; this process's listener (started by ``start``) delivers
    to local subscribers like every other node's. If the PUBLISH fails, the event is delivered
    to this node's subscribers directly and a warning is logged (an outage of the optional
    shared store must not take the API down). ``start`` waits up to ``start_timeout`` seconds
    for the first subscription, then returns anyway; the listener keeps retrying.
    """

    def __init__(self, redis: Redis, *, channel: str = CHANNEL, queue_size: int = QUEUE_SIZE,
                 retry_delay: float = 0.2, max_retry_delay: float = 5.0,
                 start_timeout: float = 2.0) -> None:
        self._redis = redis
        self._channel = channel
        self._subscribers = _Subscribers(queue_size)
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._start_timeout = start_timeout
        self._listening = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, *, channel: str = CHANNEL,
                 queue_size: int = QUEUE_SIZE) -> RedisDeviceEventHub:
        client = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                health_check_interval=15)
        return cls(client, channel=channel, queue_size=queue_size)

    @property
    def listening(self) -> bool:
        """Whether the listener is subscribed right now (for health checks and tests)."""
        return self._listening.is_set()

    async def publish(self, device_ids: Sequence[str], event: DeviceEvent) -> None:
        if not device_ids:
            return
        payload = json.dumps({
            "device_ids": list(device_ids),
            "type": event.type,
            "data": dict(event.data) if event.data is not None else None,
        }, separators=(",", ":"))
        try:
            await self._redis.publish(self._channel, payload)
        except (RedisError, OSError) as exc:
            log.warning("device events: Redis unavailable (%s); delivering %s on this node only",
                        exc, event.type)
            self._subscribers.deliver(device_ids, event)

    def subscribe(self, device_id: str) -> AbstractAsyncContextManager[
            asyncio.Queue[DeviceEvent]]:
        return self._subscribers.subscribe(device_id)

    async def start(self) -> None:
        if self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(), name="device-events-listener")
        try:
            await asyncio.wait_for(self._listening.wait(), self._start_timeout)
        except TimeoutError:
            log.warning("device events: not subscribed to Redis after %.1f s; retrying in the "
                        "background", self._start_timeout)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            self._listener = None
        await self._redis.aclose()

    async def _listen(self) -> None:
        delay = self._retry_delay
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._listening.set()
                        delay = self._retry_delay
                    elif message["type"] == "message":
                        self._dispatch(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("device events: Redis listener lost (%s); resubscribing in %.1f s",
                            exc, delay)
            except Exception:
                log.exception("device events: Redis listener failed; resubscribing in %.1f s",
                              delay)
            finally:
                self._listening.clear()
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry_delay)

    def _dispatch(self, raw: bytes | str) -> None:
        try:
            payload = json.loads(raw)
            device_ids = payload["device_ids"]
            event_type = payload["type"]
            data = payload.get("data")
            if (not isinstance(device_ids, list)
                    or not all(isinstance(item, str) for item in device_ids)
                    or not isinstance(event_type, str)
                    or not (data is None or isinstance(data, dict))):
                raise TypeError("wrong field types")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("device events: ignoring a malformed message on %s (%s)",
                        self._channel, exc)
            return
        self._subscribers.deliver(device_ids, DeviceEvent(event_type, data))


def device_event_hub(redis_url: str | None) -> DeviceEventHub:
    """The hub for this configuration: Redis-backed when ``redis_url`` is set, else local."""
    if redis_url:
        return RedisDeviceEventHub.from_url(redis_url)
    return LocalDeviceEventHub()
