"""Android phones as SMS gateways (the SMS Gateway for Android app in private-server mode).

Tidings never sends these messages itself: phones pull them over the phone API
(``/mobile/v1/…``) and report their states back, so ``send`` is never called for live traffic
(the dispatcher leaves ``ANDROID`` apps alone; test-mode traffic goes to the simulator as for
every app). What this module knows is the app's own webhook format: a phone's ``sms:received``
webhook pointed at the app's inbound URL (``/sms/v1/webhooks/{app_id}/inbound/?token=…``)
becomes inbound messages. Reports of sent messages come through the phone API, not webhooks.

The app's webhook envelope is ``{id, webhookId, deviceId, event, payload}``; ``payload`` of
``sms:received`` carries ``messageId``, ``phoneNumber`` (the sender), ``message`` and
``receivedAt``; ``sms:data-received`` has ``data`` (base64) instead of ``message``; the batch
events carry ``{"messages": [payload, …]}``. The provider id of an inbound message is
``<deviceId>:<messageId>``: the app numbers messages per phone.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

import httpx
import pydantic
from pydantic import ConfigDict, Field

from tidings.domain.android import parse_time
from tidings.providers._http import verify_url_token
from tidings.providers.base import (
    AccountContext,
    Balance,
    InboundMessage,
    OutboundSms,
    Reject,
    SendOutcome,
    Unsupported,
    WebhookAck,
    WebhookEvent,
    WebhookPayloadError,
    WebhookRequest,
)

slug: Final = "android"
default_base_url: Final = "android://phones"
webhook_ack: Final = WebhookAck()

_INBOUND_EVENTS: Final = {"sms:received": "message", "sms:data-received": "data"}
_BATCH_EVENTS: Final = {"sms:batch:received": "message", "sms:batch:data-received": "data"}


class Credentials(pydantic.BaseModel):
    """Phones authenticate with tokens Tidings issues; the app stores no provider secret."""

    model_config = ConfigDict(extra="forbid")


class Config(pydantic.BaseModel):
    """``default_region``: the region of numbers written without ``+`` (``RU``, as the original
    server). ``privacy_hashing``: replace content and numbers by hashes once a phone has
    processed a message, ``hashing_delay_seconds`` later. ``max_pending_per_device`` and
    ``max_pending_age_seconds``: queue limits per phone; a send past them answers 503."""

    model_config = ConfigDict(extra="forbid")

    default_region: str = Field(default="RU", min_length=2, max_length=2)
    privacy_hashing: bool = False
    hashing_delay_seconds: int = Field(default=60, ge=0, le=30 * 24 * 3600)
    max_pending_per_device: int | None = Field(default=None, ge=1)
    max_pending_age_seconds: int | None = Field(default=None, ge=1)

    @pydantic.field_validator("default_region")
    @classmethod
    def _upper(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError("must be a two-letter region code (ISO 3166), e.g. RU")
        return value.upper()


credentials_model: Final = Credentials
config_model: Final = Config


async def send(message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *,
               now: datetime) -> SendOutcome:
    """Never used for live traffic (phones pull); refuses rather than pretend to send."""
    return Reject("pull_only", "Android apps deliver through their phones, which pull messages")


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """The per-app token in the query string (``?token=``), compared in constant time."""
    verify_url_token(request, account)


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """Inbound messages of an ``sms:received`` / ``sms:data-received`` webhook (or their batch
    forms); ``[]`` for every other event. ``WebhookPayloadError`` for a body that is not the
    app's envelope."""
    try:
        body = json.loads(request.body)
    except ValueError:
        raise WebhookPayloadError("the body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("payload"), dict):
        raise WebhookPayloadError("expected the app's envelope {id, deviceId, event, payload}")
    event = body.get("event")
    device_id = str(body.get("deviceId") or "")
    payload: dict[str, Any] = body["payload"]
    if event in _INBOUND_EVENTS:
        return [_inbound(payload, device_id, _INBOUND_EVENTS[event])]
    if event in _BATCH_EVENTS:
        items = payload.get("messages")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise WebhookPayloadError("payload.messages must be a list of messages")
        return [_inbound(item, device_id, _BATCH_EVENTS[event]) for item in items]
    return []


def _inbound(payload: dict[str, Any], device_id: str, content_field: str) -> InboundMessage:
    message_id = payload.get("messageId") or payload.get("id")
    sender = payload.get("phoneNumber") or payload.get("sender")
    content = payload.get(content_field)
    if not message_id or not sender or not isinstance(content, str):
        raise WebhookPayloadError(
            f"payload needs messageId, phoneNumber and {content_field}")
    received_at = None
    if payload.get("receivedAt"):
        try:
            received_at = parse_time(str(payload["receivedAt"]))
        except ValueError as exc:
            raise WebhookPayloadError(f"payload.receivedAt: {exc}") from None
    return InboundMessage(provider_message_id=f"{device_id}:{message_id}"[:100],
                          from_number=str(sender), to_number=str(payload.get("recipient") or ""),
                          text=content, received_at=received_at)


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance | Unsupported:
    return Unsupported()


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str] | Unsupported:
    return Unsupported()
