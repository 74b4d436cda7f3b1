"""Pushing device events from a request: the app's ``DeviceEventHub`` (in-process, or Redis
pub/sub so a phone connected to any node hears it)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from tidings.pipeline.device_events import DeviceEvent, DeviceEventHub


def event_hub(request: Request) -> DeviceEventHub:
    hub: DeviceEventHub = request.app.state.device_events
    return hub


async def push_to_devices(request: Request, device_ids: Sequence[str],
                          event: DeviceEvent) -> None:
    """Tell these phones; call it after the commit, so that what they fetch is there."""
    if device_ids:
        await event_hub(request).publish(list(device_ids), event)
