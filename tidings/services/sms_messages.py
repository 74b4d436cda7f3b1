"""Reading and cancelling a tenant's SMS messages: filtered lists, one message with its full
history, and cancelling a message that is still queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Message, MessageEvent
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.states import MessageState
from tidings.errors import Conflict, InvalidInput, NotFound
from tidings.services import callback_events
from tidings.services.callback_queue import MessageSnapshot

_S = MessageState

@dataclass(frozen=True)
class MessageFilters:
    state: str | None = None
    phone: str | None = None
    sms_app_id: str | None = None
    direction: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    batch_id: str | None = None


def list_messages_query(tenant_id: str, filters: MessageFilters) -> Any:
    """The tenant's messages matching ``filters``, newest first. ``InvalidInput`` for an
    unknown state or direction."""
    query = owned_by(Message, tenant_id)
    if filters.state is not None:
        if filters.state not in {state.value for state in MessageState}:
            raise InvalidInput.for_field("state", "unknown state; one of " +
                                         ", ".join(state.value for state in MessageState))
        query = query.where(Message.state == filters.state)
    if filters.direction is not None:
        if filters.direction not in ("inbound", "outbound"):
            raise InvalidInput.for_field("direction", "must be inbound or outbound")
        query = query.where(Message.direction == filters.direction)
    if filters.phone:
        phone = filters.phone.strip()
        query = query.where((Message.to_number == phone) | (Message.from_number == phone))
    if filters.sms_app_id:
        query = query.where(Message.channel_account_id == filters.sms_app_id)
    if filters.batch_id:
        query = query.where(Message.batch_id == filters.batch_id)
    for name in ("created_after", "created_before"):
        value = getattr(filters, name)
        if value is not None and value.utcoffset() is None:
            raise InvalidInput.for_field(name, "must include a timezone (e.g. Z)")
    if filters.created_after is not None:
        query = query.where(Message.created_at >= filters.created_after)
    if filters.created_before is not None:
        query = query.where(Message.created_at < filters.created_before)
    return query.order_by(Message.id.desc())


async def get_message(session: AsyncSession, tenant_id: str, message_id: str) -> Message:
    """The tenant's message; ``NotFound(message_not_found)`` otherwise."""
    message = await get_owned(session, Message, tenant_id, message_id)
    if message is None:
        raise NotFound(f"message {message_id} not found", "message_not_found")
    return message


async def message_events(session: AsyncSession, message_id: str) -> list[MessageEvent]:
    """The message's history, oldest first."""
    return list((await session.execute(select(MessageEvent).where(
        MessageEvent.message_id == message_id).order_by(MessageEvent.id))).scalars())


async def cancel_message(session: AsyncSession, tenant_id: str, message_id: str,
                         now: datetime) -> Message:
    """Cancel a ``queued`` message. ``Conflict(not_cancellable)`` once it is being sent or
    later (an attempt may already have reached the provider)."""
    message = await get_message(session, tenant_id, message_id)
    result = await session.execute(
        update(Message).where(Message.id == message_id, Message.state == _S.QUEUED.value)
        .values(state=_S.CANCELLED.value, next_attempt_at=None, completed_at=now,
                updated_at=now).execution_options(synchronize_session=False))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.refresh(message)
        raise Conflict(f"message {message_id} is {message.state} and can no longer be "
                       "cancelled", "not_cancellable")
    session.add(MessageEvent(message_id=message_id, tenant_id=tenant_id, kind="state",
                             state_from=_S.QUEUED.value, state_to=_S.CANCELLED.value,
                             detail={"reason": "cancelled by the tenant"}, created_at=now))
    await session.flush()
    await session.refresh(message)
    await callback_events.message_status_changed(session, [MessageSnapshot.of(message)], now)
    return message
