"""Channel accounts (a tenant's installed provider apps; an "SMS app" has kind ``sms``) and the
tenant's registered DLT templates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, JsonType, UTCDateTime, id_column_type


class ChannelAccount(Base):
    """One installed provider account of a tenant.

    ``credentials`` is a ``SecretBox`` token (AES-GCM, bound to the row id), never plaintext;
    ``credential_keys`` lists which credential fields are set, so responses can show them
    without decrypting. ``daily_sent``/``daily_segments`` count what was sent on ``daily_day``
    (the tenant's local date); the scheduler resets them at the tenant's midnight.
    ``status`` is ``active`` or ``deleted`` (deleted apps keep their message history).
    """

    __tablename__ = "channel_accounts"
    __table_args__ = (Index("ix_channel_accounts_tenant_id_kind", "tenant_id", "kind"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    sender_id: Mapped[str | None] = mapped_column(String(32))
    dlt_entity_id: Mapped[str | None] = mapped_column(String(40))
    config: Mapped[dict[str, Any]] = mapped_column(JsonType)
    credentials: Mapped[str] = mapped_column(Text)
    credential_keys: Mapped[list[str]] = mapped_column(JsonType)
    webhook_token: Mapped[str] = mapped_column(String(64))
    rate_limit: Mapped[str] = mapped_column(String(32))
    daily_limit: Mapped[int | None] = mapped_column(Integer)
    price_per_segment_minor: Mapped[int | None] = mapped_column(BigInteger)
    is_default: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    daily_day: Mapped[date | None] = mapped_column(Date)
    daily_sent: Mapped[int] = mapped_column(Integer, default=0)
    daily_segments: Mapped[int] = mapped_column(Integer, default=0)
    service_profile_id: Mapped[str | None] = mapped_column(
        ForeignKey("service_profiles.id", ondelete="SET NULL"))
    p2p_enabled: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DltTemplate(Base):
    """An Indian DLT content template the tenant registered; sends name it by
    ``dlt_template_id`` (the DLT registration id), unique per tenant."""

    __tablename__ = "dlt_templates"
    __table_args__ = (
        Index("uq_dlt_templates_tenant_id_dlt_template_id", "tenant_id", "dlt_template_id",
              unique=True),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    dlt_template_id: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    sender_id: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
