"""A tenant's callback deliveries, for operations: the recent ones with how each went, and
sending one again (``replay``).

A replay makes the delivery due now with its stored body and event id (it is the same event: a
receiver that keeps event ids sees a duplicate), keeping its attempt count; a delivered or
failed one goes back to ``pending`` and gets a fresh ``TIDINGS_CALLBACK_MAX_AGE_SECONDS``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import CallbackDelivery
from tidings.db.repos.listing import fetch_page
from tidings.errors import InvalidInput, NotFound
from tidings.services.callback_queue import DELIVERED, FAILED, PENDING

STATES: Final = (PENDING, DELIVERED, FAILED)


async def list_deliveries_page(session: AsyncSession, tenant_id: str, *, limit: int,
                               offset: int, state: str | None = None,
                               message_id: str | None = None,
                               ) -> tuple[list[CallbackDelivery], int]:
    """One page of the tenant's deliveries, newest first, optionally of one state or message."""
    query = select(CallbackDelivery).where(CallbackDelivery.tenant_id == tenant_id)
    if state is not None:
        if state not in STATES:
            raise InvalidInput.for_field("state", f"must be one of {', '.join(STATES)}")
        query = query.where(CallbackDelivery.state == state)
    if message_id is not None:
        query = query.where(CallbackDelivery.message_id == message_id)
    return await fetch_page(session, query.order_by(CallbackDelivery.id.desc()),
                            limit=limit, offset=offset)


async def replay_delivery(session: AsyncSession, tenant_id: str, delivery_id: int,
                          now: datetime) -> CallbackDelivery:
    """Make the tenant's delivery due now (module docstring); ``NotFound`` otherwise."""
    delivery = (await session.execute(select(CallbackDelivery).where(
        CallbackDelivery.id == delivery_id,
        CallbackDelivery.tenant_id == tenant_id))).scalar_one_or_none()
    if delivery is None:
        raise NotFound(f"no callback delivery {delivery_id}")
    if delivery.state != PENDING:
        delivery.created_at = now  # its give-up age counts from the replay
    delivery.state = PENDING
    delivery.next_attempt_at = now
    delivery.completed_at = None
    delivery.updated_at = now
    await session.flush()
    return delivery
