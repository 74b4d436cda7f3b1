"""SMPP 3.4: SMS apps that reach an SMSC (a carrier's or an aggregator's) over SMPP binds.

Unlike the HTTP providers, SMPP keeps state: long-lived binds, each with a window of
outstanding submits. They are held by the worker process (``tidings.pipeline.smpp_binds``),
one ``SmppConnector`` per app (``connector``), over our own sessions (``session``) and the
smpp34 codec (``pdu``). This module is what the registry and the API see: the app's
credentials and configuration, and no HTTP send (``send`` refuses: the dispatcher sends SMPP
apps' messages through their binds).

Configuration (``provider_config``), every field but ``host`` and ``system_id`` optional:

- ``host``, ``port`` (2775), ``system_id``, ``system_type`` (""), ``bind_mode``
  (``transceiver``, or ``transmitter_receiver`` for a transmitter bind plus a receiver bind),
  ``binds`` (1: transceivers, or transmitter/receiver pairs, per app and worker node);
- ``source_addr_ton``/``source_addr_npi`` (by default from the sender: alphanumeric 5/0,
  ``+`` and digits 1/1, other digits 0/1), ``dest_addr_ton``/``dest_addr_npi`` (1/1: E.164);
- ``window`` (32 outstanding submits per bind), ``throughput`` (submits per second for the
  app, unlimited by default), ``enquire_link_seconds`` (30), ``response_timeout_seconds``
  (10), ``reconnect_min_seconds``/``reconnect_max_seconds`` (1 and 60, doubling);
- ``data_coding`` (0: GSM-7 texts go as the SMSC default alphabet; 1 IA5/ASCII and 3
  Latin-1 for SMSCs that want those; UCS-2 texts always go as 8);
- ``registered_delivery`` (true: ask for a receipt per part), ``dlr_id_format``
  (``same``: receipts name the id submit_sm_resp gave, in any case; ``hex``: receipts give
  in hex an id submit_sm_resp gave in decimal; ``decimal``: the reverse). Provider ids are
  stored in the canonical form matching uses (``tidings.domain.smpp_receipts``).

Credentials (``provider_credentials``): ``{"password"}``, encrypted at rest like every other.

Why our own sessions over smpp34's codec: smpp34 (PyPI, Rust-backed) encodes and decodes
submit_sm and deliver_sm with their TLVs at millions a second, so it is the PDU layer. Its
client acknowledges every deliver_sm itself, before the receipt could be stored, and keeps its
timers and the answers to throttling out of reach; aiosmpplib (pure Python) brings a whole ESME
framework (broker, correlator, hooks) that would own the queue and the retries the pipeline
already owns. The session (``session``: sequence numbers, the window, enquire_link, unbind)
and the connector (``connector``: binds, backoff, throttling, parts, receipts) are ours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import httpx
import pydantic
from pydantic import ConfigDict, Field

from tidings.domain.smpp_receipts import DlrIdFormat
from tidings.providers.base import (
    AccountContext,
    Balance,
    OutboundSms,
    Reject,
    SendOutcome,
    Unsupported,
    WebhookAck,
    WebhookEvent,
    WebhookRequest,
    WebhookVerificationError,
)

slug: Final = "smpp"
default_base_url: Final = "smpp://configured-per-app"
webhook_ack: Final = WebhookAck()


class Credentials(pydantic.BaseModel):
    """The bind password (SMPP allows at most 8 characters)."""

    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=8)


class Config(pydantic.BaseModel):
    """Where and how to bind; see the module docstring for each field."""

    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15, pattern=r"^[\x20-\x7e]+$")
    system_type: str = Field(default="", max_length=12, pattern=r"^[\x20-\x7e]*$")
    bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    binds: int = Field(default=1, ge=1, le=8)
    source_addr_ton: int | None = Field(default=None, ge=0, le=6)
    source_addr_npi: int | None = Field(default=None, ge=0, le=18)
    dest_addr_ton: int = Field(default=1, ge=0, le=6)
    dest_addr_npi: int = Field(default=1, ge=0, le=18)
    window: int = Field(default=32, ge=1, le=1000)
    throughput: float | None = Field(default=None, gt=0, le=100_000)
    enquire_link_seconds: float = Field(default=30.0, ge=1, le=600)
    response_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    reconnect_min_seconds: float = Field(default=1.0, gt=0, le=600)
    reconnect_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    data_coding: Literal[0, 1, 3] = 0
    registered_delivery: bool = True
    dlr_id_format: DlrIdFormat = DlrIdFormat.SAME


credentials_model: Final = Credentials
config_model: Final = Config


async def send(message: OutboundSms, account: AccountContext, http: httpx.AsyncClient, *,
               now: datetime) -> SendOutcome:
    """Never used: the dispatcher sends SMPP apps' messages through their binds."""
    return Reject("session_only", "SMPP apps send through the worker's binds, not over HTTP")


def verify_webhook(request: WebhookRequest, account: AccountContext) -> None:
    """SMPP reports arrive on the binds; the webhook routes take nothing for these apps."""
    raise WebhookVerificationError("SMPP apps receive reports on their binds, not by webhook")


def parse_webhook(request: WebhookRequest, account: AccountContext) -> list[WebhookEvent]:
    """Never reached (``verify_webhook`` refuses every request)."""
    return []


async def balance(account: AccountContext, http: httpx.AsyncClient) -> Balance | Unsupported:
    """SMPP has no balance query."""
    return Unsupported()


async def sender_names(account: AccountContext, http: httpx.AsyncClient) -> list[str] | Unsupported:
    """SMPP has no sender-name listing."""
    return Unsupported()
