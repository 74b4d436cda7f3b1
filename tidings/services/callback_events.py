"""Turning message changes into callback deliveries, in the transaction that made the change.

Each event becomes one ``callback_deliveries`` row per endpoint of the tenant that takes it,
with the exact body every attempt will send: the envelope
``{"id", "event", "tenant_id", "occurred_at", "data"}`` whose ``data`` is the message as the
native API shows it (``sms_messages.message_view``). ``id`` is the event id
(``X-Tidings-Event-Id``): the same for every endpoint and every attempt. The pipeline's callback
sender (``pipeline.callbacks``) delivers them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import CallbackDelivery, Message, WebhookEndpoint
from tidings.domain.ids import new_id
from tidings.services import profile_callbacks
from tidings.services.callback_queue import (
    MessageSnapshot,
    delivery_row,
    json_value,
    rfc3339,
)
from tidings.services.webhooks import MESSAGE_INBOUND, MESSAGE_STATUS


def envelope(event_id: str, event: str, tenant_id: str, occurred_at: datetime,
             data: dict[str, Any]) -> str:
    """The JSON body of one event, as sent on every attempt."""
    return json.dumps({"id": event_id, "event": event, "tenant_id": tenant_id,
                       "occurred_at": rfc3339(occurred_at),
                       "data": {key: json_value(value) for key, value in data.items()}},
                      ensure_ascii=False, separators=(",", ":"))


async def _endpoints_by_tenant(session: AsyncSession, tenant_ids: set[str],
                               event: str) -> dict[str, list[WebhookEndpoint]]:
    found: dict[str, list[WebhookEndpoint]] = {tenant_id: [] for tenant_id in tenant_ids}
    if not tenant_ids:
        return found
    rows = await session.execute(select(WebhookEndpoint)
                                 .where(WebhookEndpoint.tenant_id.in_(tenant_ids))
                                 .order_by(WebhookEndpoint.id))
    for endpoint in rows.scalars():
        if event in endpoint.events:
            found[endpoint.tenant_id].append(endpoint)
    return found


async def enqueue_message_events(session: AsyncSession, event: str,
                                 snapshots: Sequence[MessageSnapshot], now: datetime) -> int:
    """Queue ``event`` for each snapshot (in order) to every endpoint of its tenant that takes
    it; answers how many deliveries were queued."""
    endpoints = await _endpoints_by_tenant(session, {s.tenant_id for s in snapshots}, event)
    rows: list[dict[str, Any]] = []
    for snapshot in snapshots:
        targets = endpoints[snapshot.tenant_id]
        if not targets:
            continue
        event_id = new_id()
        body = envelope(event_id, event, snapshot.tenant_id, now, snapshot.view)
        rows += [delivery_row(tenant_id=snapshot.tenant_id, event_id=event_id, event=event,
                              message_id=snapshot.message_id, url=endpoint.url, method="POST",
                              body=body, now=now, endpoint_id=endpoint.id)
                 for endpoint in targets]
    if rows:
        await session.execute(insert(CallbackDelivery), rows)
    return len(rows)


async def enqueue_message_callbacks(session: AsyncSession, snapshots: Sequence[MessageSnapshot],
                                    now: datetime) -> int:
    """``message.status`` to the ``callback_url`` a send named, for each snapshot of such a
    message (the sender signs it with the tenant's secret, ``webhooks.tenant_signing_secret``)."""
    rows = []
    for snapshot in snapshots:
        url = snapshot.view.get("callback_url")
        if not url:
            continue
        event_id = new_id()
        rows.append(delivery_row(
            tenant_id=snapshot.tenant_id, event_id=event_id, event=MESSAGE_STATUS,
            message_id=snapshot.message_id, url=url, method="POST",
            body=envelope(event_id, MESSAGE_STATUS, snapshot.tenant_id, now, snapshot.view),
            now=now))
    if rows:
        await session.execute(insert(CallbackDelivery), rows)
    return len(rows)


async def message_status_changed(session: AsyncSession, snapshots: Sequence[MessageSnapshot],
                                 now: datetime) -> int:
    """``message.status`` to the tenants' endpoints and to the sends' own ``callback_url``,
    and a delivery receipt to the apps' service profiles, for each change of a message's
    state."""
    queued = await enqueue_message_events(session, MESSAGE_STATUS, snapshots, now)
    queued += await enqueue_message_callbacks(session, snapshots, now)
    return queued + await profile_callbacks.enqueue_receipts(session, snapshots, now)


async def message_received(session: AsyncSession, message: Message, now: datetime, *,
                           to_profile: bool = True) -> int:
    """``message.inbound`` to the tenant's endpoints and, unless ``to_profile`` is False (a
    P2P message forwarded instead), the inbound callback to its app's service profile."""
    queued = await enqueue_message_events(session, MESSAGE_INBOUND,
                                          [MessageSnapshot.of(message)], now)
    if to_profile:
        queued += await profile_callbacks.enqueue_inbound(session, message, now)
    return queued
