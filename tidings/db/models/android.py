"""The SMS-Gateway-for-Android surface: the logins of a tenant's Android apps, their phones,
the JWTs and one-time codes they hand out, their webhook registrations, and the header of each
message sent through the 3rd-party API (its recipients are ordinary ``messages`` rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, JsonType, UTCDateTime, id_column_type

NANOID_LENGTH = 21


class AndroidLogin(Base):
    """One "user" of the original server: Basic credentials for the 3rd-party API of one
    Android app. Its phones, messages, webhooks and settings belong to it. The password is
    stored only as an argon2 hash."""

    __tablename__ = "android_logins"
    __table_args__ = (Index("ix_android_logins_channel_account_id", "channel_account_id"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_account_id: Mapped[str] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    login: Mapped[str] = mapped_column(String(16), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AndroidDevice(Base):
    """A registered phone. ``token_hash`` is the SHA-256 of its bearer token for the phone API;
    ``deleted_at`` set means removed (its token answers 401)."""

    __tablename__ = "android_devices"
    __table_args__ = (Index("ix_android_devices_login_id", "login_id"),)

    id: Mapped[str] = mapped_column(String(NANOID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_account_id: Mapped[str] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    login_id: Mapped[str] = mapped_column(ForeignKey("android_logins.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(128))
    push_token: Mapped[str | None] = mapped_column(String(256))
    sim_cards: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AndroidToken(Base):
    """A JWT pair issued through ``/auth/token``: its scopes, and whether it was revoked (both
    tokens of a pair share the ``jti``)."""

    __tablename__ = "android_tokens"

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    login_id: Mapped[str] = mapped_column(ForeignKey("android_logins.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JsonType)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AndroidCode(Base):
    """A one-time code (``GET /mobile/v1/user/code``) that lets one more phone join a login."""

    __tablename__ = "android_codes"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    login_id: Mapped[str] = mapped_column(ForeignKey("android_logins.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AndroidWebhook(Base):
    """A webhook registration the phones fetch and call (the server only stores it).
    ``ext_id`` is the id clients see; ``device_id`` null means every phone of the login."""

    __tablename__ = "android_webhooks"
    __table_args__ = (
        Index("uq_android_webhooks_login_id_ext_id", "login_id", "ext_id", unique=True),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    login_id: Mapped[str] = mapped_column(ForeignKey("android_logins.id", ondelete="CASCADE"))
    ext_id: Mapped[str] = mapped_column(String(36))
    url: Mapped[str] = mapped_column(String(2048))
    event: Mapped[str] = mapped_column(String(40))
    device_id: Mapped[str | None] = mapped_column(String(NANOID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AndroidMessage(Base):
    """The 3rd-party API's view of one message to several recipients: what the phone needs
    that a ``messages`` row does not hold (the client's id, data content, SIM, flags) and the
    state timestamps the phone reported. Recipients are ``messages`` rows pointing here.

    ``ext_id`` is the id clients see (theirs, or a generated nanoid), unique per tenant.
    ``cancel_requested`` is the server-side ``Cancelling``: asked for, not yet confirmed by the
    phone. ``state`` is the Android word last computed from the recipients' rows, kept for
    filtering and for what phones pull (views compute it afresh).
    ``text`` or ``data`` (base64, with ``data_port``) is the content; ciphertext when
    ``is_encrypted``; a SHA-256 hex digest once ``is_hashed``."""

    __tablename__ = "android_messages"
    __table_args__ = (
        Index("uq_android_messages_tenant_id_ext_id", "tenant_id", "ext_id", unique=True),
        Index("ix_android_messages_login_id_created_at", "login_id", "created_at"),
        Index("ix_android_messages_device_id_state", "device_id", "state"),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_account_id: Mapped[str] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    login_id: Mapped[str] = mapped_column(ForeignKey("android_logins.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(NANOID_LENGTH))
    ext_id: Mapped[str] = mapped_column(String(36))
    text: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)
    data_port: Mapped[int | None] = mapped_column(Integer)
    is_encrypted: Mapped[bool] = mapped_column(Boolean)
    is_hashed: Mapped[bool] = mapped_column(Boolean)
    with_delivery_report: Mapped[bool] = mapped_column(Boolean)
    sim_number: Mapped[int | None] = mapped_column(SmallInteger)
    priority: Mapped[int] = mapped_column(SmallInteger)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    schedule_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    states: Mapped[dict[str, str]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
