"""The Android surface's JSON shapes (camelCase, times with at most six fractional digits), and
the reading of its request bodies, whose quirks (``"id": null``, naive datetimes, booleans
written ``True``) the official clients rely on."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import Request

from tidings.db.models import AndroidDevice, AndroidWebhook
from tidings.domain.android import android_state, format_time, parse_time
from tidings.errors import InvalidInput
from tidings.services.android.access import IssuedToken
from tidings.services.android.messages import AndroidMessageView


async def json_body(request: Request) -> Any:
    """The request's JSON body; ``InvalidInput`` when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        raise InvalidInput("request body is not valid JSON", "malformed_json") from None


def json_object(value: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """``body[name]``, ``None`` when absent or null; ``InvalidInput`` for another JSON type
    (``True`` is not an int here)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool and (
            not isinstance(kind, tuple) or bool not in kind):
        raise InvalidInput.for_field(name, "has the wrong type")
    if not isinstance(value, kind):
        raise InvalidInput.for_field(name, "has the wrong type")
    return value


def optional_time(body: dict[str, Any], name: str) -> datetime | None:
    value = optional(body, name, str)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput.for_field(name, str(exc)) from None


def query_flag(request: Request, name: str) -> bool:
    """A boolean query parameter: ``true``/``True``/``1`` (the Python client sends ``True``)."""
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no", ""):
        return False
    raise InvalidInput.for_field(name, "must be true or false")


def query_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput.for_field(name, "must be an integer") from None


def query_time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput.for_field(name, str(exc)) from None


def message_state(view: AndroidMessageView, *, include_content: bool = True) -> dict[str, Any]:
    """A 3rd-party ``MessageState``."""
    header = view.header
    body: dict[str, Any] = {
        "id": header.ext_id, "deviceId": header.device_id, "state": view.state,
        "isHashed": header.is_hashed, "isEncrypted": header.is_encrypted,
        "recipients": [_recipient(row.to_number, row.state, row.error_detail)
                       for row in view.rows],
        "states": dict(header.states),
    }
    if header.is_hashed:
        body["hashedMessage"] = {"hash": header.text or header.data or ""}
    elif include_content:
        body.update(_content(view))
    return body


def phone_message(view: AndroidMessageView) -> dict[str, Any]:
    """One entry of a phone's ``GET /mobile/v1/message``: the send fields, the legacy
    ``message`` text, the state and ``createdAt``."""
    header = view.header
    body: dict[str, Any] = {
        "id": header.ext_id, "deviceId": header.device_id,
        "phoneNumbers": [row.to_number for row in view.rows],
        "simNumber": header.sim_number, "withDeliveryReport": header.with_delivery_report,
        "isEncrypted": header.is_encrypted, "priority": header.priority,
        "validUntil": format_time(header.valid_until) if header.valid_until else None,
        "scheduleAt": format_time(header.schedule_at) if header.schedule_at else None,
        "state": view.state, "createdAt": format_time(header.created_at),
        **_content(view),
    }
    body["message"] = header.text if header.text is not None else None
    return body


def device(item: AndroidDevice) -> dict[str, Any]:
    return {"id": item.id, "name": item.name or "", "createdAt": format_time(item.created_at),
            "updatedAt": format_time(item.updated_at),
            "deletedAt": format_time(item.deleted_at) if item.deleted_at else None,
            "lastSeen": format_time(item.last_seen_at), "simCards": item.sim_cards}


def webhook(item: AndroidWebhook) -> dict[str, Any]:
    return {"id": item.ext_id, "url": item.url, "event": item.event,
            "deviceId": item.device_id}


def token(issued: IssuedToken) -> dict[str, Any]:
    """Both spellings: the original server answers snake_case, the official Python client
    4.3 reads camelCase."""
    expires = format_time(issued.expires_at)
    return {"id": issued.jti, "token_type": "Bearer", "tokenType": "Bearer",
            "access_token": issued.access_token, "accessToken": issued.access_token,
            "refresh_token": issued.refresh_token, "refreshToken": issued.refresh_token,
            "expires_at": expires, "expiresAt": expires}


def _content(view: AndroidMessageView) -> dict[str, Any]:
    header = view.header
    if header.data is not None:
        return {"dataMessage": {"data": header.data, "port": header.data_port}}
    return {"textMessage": {"text": header.text}}


def _recipient(number: str, state: str, error: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"phoneNumber": number, "state": android_state(state)}
    if error:
        body["error"] = error
    return body
