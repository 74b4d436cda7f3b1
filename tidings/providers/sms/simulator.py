"""The built-in simulator: delivers nothing, accepts everything, then reports.

Used by test-mode API keys (``jc_test_…``: all their traffic comes here whatever app they name)
and by ``SIMULATOR`` apps, so a tenant can integrate, and ``make run`` works, with no provider
account. ``send`` answers ``Accepted`` at once with the id ``sim-<message id>``; the pipeline's
simulator job later applies ``simulated_report`` once ``delay_ms`` has passed: ``failed``
(code ``SIM_FAILED``) for a ``failure_rate`` share of messages, ``delivered`` for the rest. The
choice is a hash of the message id, so it is the same after a restart and in every test run.

It has no webhooks of its own: the webhook routes verify the per-app token and record nothing.
"""

from __future__ import annotations

import hashlib
from typing import Final

import httpx
import pydantic
from pydantic import ConfigDict, Field

from tidings.domain.states import MessageState
from tidings.providers._http import verify_url_token
from tidings.providers.base import (
    Accepted,
    AccountContext,
    Balance,
    OutboundSms,
    SendOutcome,
    StatusUpdate,
    Unsupported,
    WebhookAck,
    WebhookEvent,
    WebhookRequest,
)

slug: Final = "simulator"
default_base_url: Final = "simulator://local"
webhook_ack: Final = WebhookAck()
ID_PREFIX: Final = "sim-"


class Credentials(pydantic.BaseModel):
    """The simulator needs no credentials."""

    model_config = ConfigDict(extra="forbid")


class Config(pydantic.BaseModel):
    """``delay_ms``: how long after sending the report comes; ``failure_rate``: the share of
    messages reported failed (0 to 1)."""

    model_config = ConfigDict(extra="forbid")

    delay_ms: int = Field(default=500, ge=0, le=3_600_000)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)


credentials_model: Final = Credentials
config_model: Final = Config


async def send(
    message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *, now: object = None
) -> SendOutcome:
    """Accept ``message`` at once; no request is made."""
    return Accepted((ID_PREFIX + message.message_id,), raw={"simulated": True})


def simulated_report(message_id: str, config: Config) -> StatusUpdate:
    """The report the simulator gives ``message_id``: failed for a ``failure_rate`` share of
    ids (chosen by hash, so stable), delivered otherwise."""
    digest = hashlib.sha256(message_id.encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    provider_id = ID_PREFIX + message_id
    if draw < config.failure_rate:
        return StatusUpdate(provider_id, MessageState.FAILED, "failed", "SIM_FAILED",
                            "simulated failure (failure_rate)")
    return StatusUpdate(provider_id, MessageState.DELIVERED, "delivered")


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """The per-app token in the query string (``?token=``), compared in constant time."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """The simulator sends no webhooks; anything posted is recorded as nothing."""
    return []


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance | Unsupported:
    return Unsupported()


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str] | Unsupported:
    return Unsupported()
