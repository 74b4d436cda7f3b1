"""Tenants' callback endpoints (webhook endpoints, service profiles) and the durable queue of
callbacks to them.

A ``callback_deliveries`` row is one event bound for one URL, written in the same transaction
as the change it reports, so an event is never lost between the change and its callback. Its
``body`` is the exact JSON sent on every attempt, and ``event_id`` (``X-Tidings-Event-Id``) is
the same on each, so a receiver can drop duplicates. ``id`` is a sequence: deliveries of one
message to one URL go out in ``id`` order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, JsonType, UTCDateTime, id_column_type


class WebhookEndpoint(Base):
    """A tenant-wide URL for neutral events (``message.status``, ``message.inbound``).
    ``secret`` is a ``SecretBox`` token bound to the row id (the HMAC key), never plaintext."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JsonType)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServiceProfile(Base):
    """Where an SMS app's inbound messages (``POST``) and delivery receipts (``PATCH``) go, in
    the service-profile shapes. ``api_secret`` is a ``SecretBox`` token bound to the row id, or
    None (then callbacks carry no ``Authorization``); ``events`` holds ``inbound`` and/or
    ``delivery``."""

    __tablename__ = "service_profiles"
    __table_args__ = (Index("ix_service_profiles_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    callback_url: Mapped[str] = mapped_column(Text)
    api_secret: Mapped[str | None] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallbackDelivery(Base):
    """One event bound for one URL, and how its delivery went.

    ``state``: ``pending`` (due at ``next_attempt_at``; while a sender holds it, that is when
    its lease runs out, so a sender that died leaves it due again), ``delivered`` (a 2xx),
    ``failed`` (given up after ``TIDINGS_CALLBACK_MAX_AGE_SECONDS``). ``endpoint_id`` is the
    webhook endpoint whose secret signs it (HMAC), ``profile_id`` the service profile whose
    ``api_secret`` signs it (JWT); deleting either deletes its queue.
    """

    __tablename__ = "callback_deliveries"
    __table_args__ = (
        Index("ix_callback_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_callback_deliveries_tenant_id_id", "tenant_id", "id"),
        # Per-message order: an earlier pending delivery to the same URL goes first.
        Index("ix_callback_deliveries_message_id_url_id", "message_id", "url", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    profile_id: Mapped[str | None] = mapped_column(
        ForeignKey("service_profiles.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(id_column_type())
    event: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(id_column_type())
    url: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
