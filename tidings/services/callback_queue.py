"""The rows of the callback queue (``callback_deliveries``) and what every kind of callback
shares: delivery states, how times are written, a message as it was right after a change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tidings.db.models import Message
from tidings.services.message_view import message_view

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"


def rfc3339(moment: datetime) -> str:
    """``2026-11-24T12:00:00.123456Z``: UTC with a ``Z``, as every callback writes times."""
    return moment.isoformat().replace("+00:00", "Z")


def json_value(value: Any) -> Any:
    """``value`` as a callback's JSON holds it (datetimes in RFC 3339)."""
    return rfc3339(value) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class MessageSnapshot:
    """A message as it was right after one change (a batch of reports may change it twice)."""

    tenant_id: str
    message_id: str
    app_id: str
    view: dict[str, Any]

    @classmethod
    def of(cls, message: Message) -> MessageSnapshot:
        return cls(message.tenant_id, message.id, message.channel_account_id,
                   message_view(message))


def delivery_row(*, tenant_id: str, event_id: str, event: str, message_id: str | None,
                 url: str, method: str, body: str, now: datetime, endpoint_id: str | None = None,
                 profile_id: str | None = None) -> dict[str, Any]:
    """A ``callback_deliveries`` row, due now; ``endpoint_id`` (HMAC) or ``profile_id`` (JWT)
    names what signs it."""
    return {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "profile_id": profile_id,
            "event_id": event_id, "event": event, "message_id": message_id, "url": url,
            "method": method, "body": body, "state": PENDING, "attempts": 0,
            "next_attempt_at": now, "last_status_code": None, "last_error": None,
            "created_at": now, "updated_at": now, "completed_at": None}
