"""Messages (one row per recipient, outbound and inbound), their append-only event history,
batches (broadcasts, bulk CSV jobs) and outbox jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, JsonType, UTCDateTime, id_column_type


class Message(Base):
    """One SMS to or from one number.

    ``next_attempt_at`` is when the row next needs the pipeline, by state: ``queued``, when it
    falls due (creation, ``scheduled_at``, or a retry's backoff); ``sending``, when its lease
    runs out (a worker that died: the row goes back to the queue); ``sent`` through the
    simulator, when its simulated report is due; otherwise null. The dispatcher claims due
    ``queued`` rows per app by priority, then by due time. ``attempts`` counts claims.
    ``mode`` is ``live`` or ``test`` (test-mode keys' traffic, which always goes to the
    simulator).

    Live messages of an Android app are not the dispatcher's: they stay ``queued`` with a null
    ``next_attempt_at`` until a phone pulls them, and ``android_message_id`` ties the
    recipients of one 3rd-party API message to their ``android_messages`` header (set when a
    phone first pulls a message sent through another API).
    """

    __tablename__ = "messages"
    __table_args__ = (
        # The dispatcher's per-app queue: due rows by priority, then by when they fell due.
        Index("ix_messages_account_queue", "channel_account_id", "state",
              text("priority DESC"), "next_attempt_at"),
        # Lease recovery (sending), simulator reports (sent), expiry sweeps (queued).
        Index("ix_messages_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_messages_tenant_id_id", "tenant_id", "id"),
        Index("ix_messages_channel_account_id_provider_message_id", "channel_account_id",
              "provider_message_id"),
        Index("ix_messages_batch_id_state", "batch_id", "state"),
        Index("ix_messages_android_message_id", "android_message_id"),
        Index("uq_messages_tenant_id_client_ref", "tenant_id", "client_ref", unique=True),
        Index("uq_messages_seq", "seq", unique=True),
        Index("uq_messages_inbound_provider_message_id", "channel_account_id",
              "provider_message_id", unique=True,
              sqlite_where=text("direction = 'inbound'"),
              postgresql_where=text("direction = 'inbound'")),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    """The message's number (inbound messages: the service-profile callback's ``id``)."""
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_account_id: Mapped[str] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(8))
    client_ref: Mapped[str | None] = mapped_column(String(128))
    batch_id: Mapped[str | None] = mapped_column(id_column_type())
    android_message_id: Mapped[str | None] = mapped_column(id_column_type())
    # Up to 256: phones of the Android surface may carry unvalidated numbers or ciphertext.
    to_number: Mapped[str] = mapped_column(String(256))
    from_number: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(SmallInteger)
    priority: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[str] = mapped_column(String(16))
    dlt_template_id: Mapped[str | None] = mapped_column(String(40))
    dlt_entity_id: Mapped[str | None] = mapped_column(String(40))
    dlt_variables: Mapped[list[str] | None] = mapped_column(JsonType)
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    # The failover route (``tidings.domain.routing.Route``), null for a message bound to one app.
    route: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(SmallInteger)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    provider_status: Mapped[str | None] = mapped_column(String(40))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MessageEvent(Base):
    """One entry of a message's history: a state change, a provider answer, a report.

    ``kind`` is ``accepted``, ``attempt``, ``state``, ``report``, ``unknown_status`` or
    ``inbound``; ``detail`` holds codes, reasons and the provider's parsed payload (never
    credentials).
    """

    __tablename__ = "message_events"
    __table_args__ = (Index("ix_message_events_message_id_id", "message_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(id_column_type())
    kind: Mapped[str] = mapped_column(String(16))
    state_from: Mapped[str | None] = mapped_column(String(16))
    state_to: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Batch(Base):
    """A bulk send (broadcast). Counters are read live from its messages, by state."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_account_id: Mapped[str] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    rejected_rows: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxJob(Base):
    """A send through the provider-agnostic outbox: the message (same id) plus what only the
    outbox keeps. ``idempotency_key`` is unique per tenant; ``meta`` is the caller's JSON."""

    __tablename__ = "outbox_jobs"
    __table_args__ = (
        Index("uq_outbox_jobs_tenant_id_idempotency_key", "tenant_id", "idempotency_key",
              unique=True),
    )

    id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"),
                                    primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    preferred_provider_slug: Mapped[str | None] = mapped_column(String(40))
    meta: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UnmatchedReport(Base):
    """A delivery report that arrived before the send it reports on was recorded (a provider
    can call back faster than the dispatcher writes its answer). Applied, then deleted, when
    the message's provider id is recorded; swept after a day."""

    __tablename__ = "unmatched_reports"
    __table_args__ = (
        Index("ix_unmatched_reports_channel_account_id_provider_message_id",
              "channel_account_id", "provider_message_id"),
        Index("ix_unmatched_reports_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    channel_account_id: Mapped[str] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    provider_message_id: Mapped[str] = mapped_column(String(100))
    report: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MessagePart(Base):
    """One part of a long message whose provider gave an id per part (SMPP submits each part
    alone): the id its receipts name, and the state they have reported. The message's state
    is the parts' together (``services.reports``): failed once a part fails, delivered once
    every part is. A message whose provider gave one id has no parts rows."""

    __tablename__ = "message_parts"
    __table_args__ = (
        Index("ix_message_parts_channel_account_id_provider_message_id", "channel_account_id",
              "provider_message_id"),
    )

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    channel_account_id: Mapped[str] = mapped_column(id_column_type())
    provider_message_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    provider_status: Mapped[str | None] = mapped_column(String(40))
    error_code: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PendingInboundPart(Base):
    """A part of a long inbound SMS waiting for the message's other parts
    (``providers.base.InboundPart``): stored, so the SMSC can be answered at once, and deleted
    when the parts are joined into one message (or, after a while, whatever came is)."""

    __tablename__ = "pending_inbound_parts"
    __table_args__ = (
        Index("uq_pending_inbound_parts_part", "channel_account_id", "from_number",
              "to_number", "reference", "total", "sequence", unique=True),
        Index("ix_pending_inbound_parts_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    channel_account_id: Mapped[str] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    from_number: Mapped[str] = mapped_column(String(64))
    to_number: Mapped[str] = mapped_column(String(64))
    reference: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(SmallInteger)
    sequence: Mapped[int] = mapped_column(SmallInteger)
    provider_message_id: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
