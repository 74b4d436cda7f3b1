"""One send through one provider: which module, with which account context, what it is given,
and what a module that raises counts as. Shared by the dispatcher and ``send_now`` (the slug
API's synchronous send)."""

from __future__ import annotations

import logging
from datetime import datetime

import httpx

from tidings.config import Settings
from tidings.db.models import ChannelAccount, Message
from tidings.domain.crypto import SecretBox
from tidings.providers.base import AccountContext, OutboundSms, Retry, SendOutcome, SmsProvider
from tidings.providers.registry import sms_provider
from tidings.providers.sms import simulator
from tidings.services.sms_apps import account_context

log = logging.getLogger(__name__)


def is_simulated(message: Message, account: ChannelAccount) -> bool:
    """Test-mode messages, and every message of a simulator app, go to the simulator."""
    return message.mode == "test" or account.provider == "SIMULATOR"


def send_context(account: ChannelAccount, box: SecretBox, settings: Settings, *,
                 simulated: bool) -> AccountContext:
    """The provider's view of ``account`` (the simulator's, for simulated sends), with the
    operator's base-URL override applied."""
    if simulated:
        return account_context(account, box, settings.public_url, simulator.default_base_url,
                               provider="SIMULATOR")
    module = sms_provider(account.provider)
    return account_context(account, box, settings.public_url,
                           settings.provider_url(module.slug, module.default_base_url))


def outbound_sms(message: Message, context: AccountContext) -> OutboundSms:
    """What the provider is given for ``message``; the message id is the idempotency key."""
    return OutboundSms(
        message_id=message.id, to=message.to_number, sender_id=message.from_number,
        text=message.text, encoding=message.encoding, segments=message.segments,
        dlt_entity_id=message.dlt_entity_id, dlt_template_id=message.dlt_template_id,
        status_callback_url=context.webhook_url_dlr, idempotency_key=message.id,
        template_variables=tuple(message.dlt_variables or ()))


async def send_through(message: Message, account: ChannelAccount, context: AccountContext,
                       http: httpx.AsyncClient, *, simulated: bool, now: datetime
                       ) -> SendOutcome:
    """``message`` sent through its provider (or the simulator). A provider module that raises
    is a bug; it must not kill the caller, so it counts as a retryable ``internal_error``."""
    provider: SmsProvider = simulator if simulated else sms_provider(account.provider)
    try:
        return await provider.send(outbound_sms(message, context), context, http, now=now)
    except Exception as exc:
        log.exception("provider %s raised while sending %s", account.provider, message.id)
        return Retry("internal_error", f"provider module raised {type(exc).__name__}")
