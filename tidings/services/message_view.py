"""A message as the native API shows it (``GET /sms/v1/messages/{id}/``), and as callbacks
carry it."""

from __future__ import annotations

from typing import Any

from tidings.db.models import Message

VIEW_FIELDS = (
    ("id", "id"), ("direction", "direction"), ("state", "state"), ("phone", "to_number"),
    ("sender_id", "from_number"), ("text", "text"), ("encoding", "encoding"),
    ("segments", "segments"), ("priority", "priority"), ("sms_app_id", "channel_account_id"),
    ("mode", "mode"), ("client_ref", "client_ref"), ("batch_id", "batch_id"),
    ("dlt_template_id", "dlt_template_id"), ("callback_url", "callback_url"),
    ("attempts", "attempts"), ("provider_message_id", "provider_message_id"),
    ("error_code", "error_code"), ("error_detail", "error_detail"),
    ("scheduled_at", "scheduled_at"), ("expires_at", "expires_at"),
    ("created_at", "created_at"), ("updated_at", "updated_at"), ("sent_at", "sent_at"),
    ("delivered_at", "delivered_at"), ("read_at", "read_at"), ("completed_at", "completed_at"),
)
"""The fields of a message as the native API shows it (``MessageBody``), and the ``messages``
columns they show."""


def message_view(message: Message) -> dict[str, Any]:
    """The message as the native API shows it (datetimes as ``datetime``)."""
    return {name: getattr(message, column) for name, column in VIEW_FIELDS}
