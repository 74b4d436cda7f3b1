"""Person-to-person (P2P) forwarding of inbound SMS.

An inbound SMS whose destination is a full MSISDN (9 digits or more,
``domain.callbacks.is_application_bound``) is person-to-person. When its app has
``p2p_enabled``, it is forwarded as an SMS to that number through the pipeline (the same app,
the original sender as the sender id, the same text) instead of going to the app's service
profile; the inbound message's history records the forward. Otherwise, and when the forward
cannot be built or paid for (the reason is logged), it is application-bound (A2P) and goes to
the callback.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import ChannelAccount, Message, MessageEvent
from tidings.domain.callbacks import is_application_bound
from tidings.errors import InvalidInput
from tidings.services import sms_send
from tidings.services.sms_send import SendPlan, SendRequest

log = logging.getLogger(__name__)

MAX_FORWARD_SEGMENTS = 255
"""The most parts a concatenated SMS has: whatever arrived can be forwarded."""


def is_person_to_person(account: ChannelAccount, message: Message) -> bool:
    """Whether ``message`` (inbound through ``account``) is to be forwarded, not called back."""
    return account.p2p_enabled and not is_application_bound(message.to_number)


async def forward_person_to_person(session: AsyncSession, account: ChannelAccount,
                                   message: Message, now: datetime) -> str | None:
    """Queue the forward of ``message`` (module docstring); its id, or None when it is not
    forwarded."""
    if not is_person_to_person(account, message):
        return None
    sender = await sms_send.tenant_sender(session, account.tenant_id, "live")
    try:
        forward = sms_send.build_message_row(
            SendPlan(app=account, template_body=None), sender,
            SendRequest(phone=message.to_number, text=message.text,
                        sender_id=message.from_number),
            now=now, max_segments=MAX_FORWARD_SEGMENTS)
    except InvalidInput as exc:
        log.info("inbound %s is P2P but cannot be forwarded (%s); it goes to the callback",
                 message.id, exc.detail)
        return None
    await sms_send.store_messages(session, [forward], now)
    if forward.error is not None:
        log.info("inbound %s is P2P but cannot be forwarded (%s); it goes to the callback",
                 message.id, forward.error.detail)
        return None
    forward_id = str(forward.row["id"])
    session.add(MessageEvent(message_id=message.id, tenant_id=message.tenant_id,
                             kind="forwarded", state_from=None, state_to=None,
                             detail={"message_id": forward_id}, created_at=now))
    return forward_id
