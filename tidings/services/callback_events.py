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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import CallbackDelivery, Message, WebhookEndpoint
from tidings.domain.ids import new_id
from tidings.services.sms_messages import message_view
from tidings.services.webhooks import MESSAGE_INBOUND, MESSAGE_STATUS

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"


def rfc3339(moment: datetime) -> str:
    """``2026-11-24T12:00:00.123456Z``: UTC with a ``Z``, as every callback writes times."""
    return moment.isoformat().replace("+00:00", "Z")


def _json_value(value: Any) -> Any:
    return rfc3339(value) if isinstance(value, datetime) else value


def envelope(event_id: str, event: str, tenant_id: str, occurred_at: datetime,
             data: dict[str, Any]) -> str:
    """The JSON body of one event, as sent on every attempt."""
    return json.dumps({"id": event_id, "event": event, "tenant_id": tenant_id,
                       "occurred_at": rfc3339(occurred_at),
                       "data": {key: _json_value(value) for key, value in data.items()}},
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


@dataclass(frozen=True)
class MessageSnapshot:
    """A message as it was right after one change (a batch of reports may change it twice)."""

    tenant_id: str
    message_id: str
    view: dict[str, Any]

    @classmethod
    def of(cls, message: Message) -> MessageSnapshot:
        return cls(message.tenant_id, message.id, message_view(message))


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
        rows += [{"tenant_id": snapshot.tenant_id, "endpoint_id": endpoint.id,
                  "event_id": event_id, "event": event, "message_id": snapshot.message_id,
                  "url": endpoint.url, "method": "POST", "body": body, "state": PENDING,
                  "attempts": 0, "next_attempt_at": now, "last_status_code": None,
                  "last_error": None, "created_at": now, "updated_at": now,
                  "completed_at": None} for endpoint in targets]
    if rows:
        await session.execute(insert(CallbackDelivery), rows)
    return len(rows)


async def message_status_changed(session: AsyncSession, snapshots: Sequence[MessageSnapshot],
                                 now: datetime) -> int:
    """``message.status`` for each change of a message's state."""
    return await enqueue_message_events(session, MESSAGE_STATUS, snapshots, now)


async def message_received(session: AsyncSession, message: Message, now: datetime) -> int:
    """``message.inbound`` for a stored inbound message."""
    return await enqueue_message_events(session, MESSAGE_INBOUND, [MessageSnapshot.of(message)],
                                        now)
