"""``send_now``: one message stored, sent through its app while the caller waits, and recorded
the way the dispatcher records its sends (``tidings.pipeline.outcomes``). The slug API's
``POST …/send`` answers with what the provider said.

The row is written ``sending`` under a lease before the provider is called, so a process that
dies mid-send leaves it to lease recovery (sent again later, at-least-once) rather than losing
it. A send the provider did not take now (``Retry``) stays in the queue with the usual backoff;
the dispatcher finishes it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tidings.db.models import ChannelAccount, Message, Tenant
from tidings.domain.states import MessageState
from tidings.pipeline.outcomes import (
    Attempt,
    OutcomeRecorder,
    retry_policy,
    scrub,
    zone_or_utc,
)
from tidings.pipeline.sending import is_simulated, send_context, send_through
from tidings.providers.base import Accepted, SendOutcome
from tidings.runtime import Runtime
from tidings.services.sms_send import PendingMessage, store_messages


@dataclass(frozen=True)
class DirectSend:
    """What became of one ``send_now``: the stored message's id, the provider's outcome, and
    its answer with the account's secrets scrubbed (``{}`` when it gave none)."""

    message_id: str
    outcome: SendOutcome
    answer: dict[str, Any]


async def send_now(runtime: Runtime, pending: PendingMessage, app: ChannelAccount
                   ) -> DirectSend:
    """Store ``pending`` (built for ``app``) and send it now (module docstring). Raises what
    storing raises (``PaymentRequired`` when the wallet cannot pay); then nothing was sent."""
    now = runtime.clock()
    pending.row.update(state=MessageState.SENDING.value, attempts=1,
                       next_attempt_at=now + timedelta(seconds=runtime.settings.lease_seconds))
    async with runtime.write_turn, runtime.sessions() as session:
        await store_messages(session, [pending], now)
        if pending.error is not None:
            raise pending.error
        timezone = (await session.execute(
            select(Tenant.timezone).where(Tenant.id == app.tenant_id))).scalar_one()
        await session.commit()
    message = Message(**pending.row)
    simulated = is_simulated(message, app)
    context = send_context(app, runtime.secret_box, runtime.settings, simulated=simulated)
    outcome = await send_through(message, app, context, runtime.http, simulated=simulated,
                                 now=runtime.clock())
    recorder = OutcomeRecorder(retry_policy(runtime.settings), random.Random(),
                               postgresql=runtime.engine.dialect.name == "postgresql")
    async with runtime.write_turn, runtime.sessions() as session:
        await recorder.record(session, [Attempt(message, app, zone_or_utc(timezone), outcome,
                                                simulated, context.secrets())],
                              runtime.clock(), usable_apps={app.id: app})
        await session.commit()
    answer = (scrub(dict(outcome.raw or {}), context.secrets())
              if isinstance(outcome, Accepted) else {})
    return DirectSend(message.id, outcome, answer)

