"""The SMS-Gateway-for-Android compatible surface, as pure rules: ids, states, hashing, times,
settings, scopes, webhook events and SSE frames.

Wire spec: shared/research/android-sms-gateway.md (server android-sms-gateway/server, client-go
v1.14.5 DTOs, Python client android-sms-gateway 4.3.3). Points that shape this module:

- States. The server writes only ``Pending`` (create) and ``Cancelling`` (cancel requested); the
  phone reports the rest. Our rows keep the neutral states of ``tidings.domain.states``::

      neutral → Android (shown)          phone's report → neutral (stored Android word)
      queued     Pending                 Pending     sending   (Processed)
      sending    Processed               Processed   sending   (Processed)
      sent       Sent                    Sent        sent
      delivered  Delivered               Delivered   delivered
      read       Delivered               Failed      failed
      failed     Failed                  Cancelled   cancelled
      expired    Failed                  Cancelling  refused: only the server sets it
      cancelled  Cancelled

- Times. The official Python client parses with ``datetime.fromisoformat(value.replace("Z",
  "+00:00"))``, which on Python 3.9/3.10 takes exactly 0, 3 or 6 fractional digits; Go emits up
  to 9. So we always write 6 digits and ``+00:00``, and read any RFC 3339 value (a naive one,
  as the client sends, is UTC).
- Settings. The original server keeps a whitelist of snake_case keys, drops unknown ones
  silently and validates the known ones against client-go's DTO (ints ``min=1``, enums
  ``oneof``). We do the same, and also keep ``processing_order``, ``cloud_url`` and
  ``private_token``, which today's server drops.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from tidings.domain.states import MessageState

# --- ids ----------------------------------------------------------------------------------------

_NANOID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def new_nanoid(size: int = 21) -> str:
    """A random id of ``size`` URL-safe characters (``A-Za-z0-9_-``), as the original server
    makes for devices, messages and webhooks (21 characters: 126 random bits)."""
    if size < 1:
        raise ValueError(f"nanoid size must be at least 1, not {size}")
    return "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(size))


# --- states -------------------------------------------------------------------------------------

ANDROID_STATES: Final[tuple[str, ...]] = (
    "Pending", "Processed", "Sent", "Delivered", "Failed", "Cancelling", "Cancelled",
)
"""Every state word of the Android API (the official client rejects any other)."""

_S = MessageState

_TO_ANDROID: Final[Mapping[str, str]] = MappingProxyType({
    _S.QUEUED: "Pending",
    _S.SENDING: "Processed",
    _S.SENT: "Sent",
    _S.DELIVERED: "Delivered",
    _S.READ: "Delivered",
    _S.FAILED: "Failed",
    _S.EXPIRED: "Failed",
    _S.CANCELLED: "Cancelled",
})

_FROM_PHONE: Final[Mapping[str, MessageState]] = MappingProxyType({
    "Pending": _S.SENDING,
    "Processed": _S.SENDING,
    "Sent": _S.SENT,
    "Delivered": _S.DELIVERED,
    "Failed": _S.FAILED,
    "Cancelled": _S.CANCELLED,
})


def android_state(neutral: str) -> str:
    """The Android word for a neutral outbound message state (``read`` shows as ``Delivered``,
    ``expired`` as ``Failed``). Raises ValueError for any other word, ``received`` included."""
    try:
        return _TO_ANDROID[neutral]
    except KeyError:
        raise ValueError(f"no Android state for message state {neutral!r}") from None


def neutral_state(android: str) -> str:
    """The neutral state (a ``MessageState``) for a state a phone reports. ``Pending`` is
    ``sending``: a phone that has pulled a message is processing it. Raises ValueError for an
    unknown word and for ``Cancelling``, which only the server sets."""
    try:
        return _FROM_PHONE[android]
    except KeyError:
        raise ValueError(_unreportable(android)) from None


def reported_state(android: str) -> str:
    """The Android word to store for a phone's report: ``Pending`` becomes ``Processed``, the
    others stay. Raises ValueError for an unknown word and for ``Cancelling``."""
    if android not in _FROM_PHONE:
        raise ValueError(_unreportable(android))
    return "Processed" if android == "Pending" else android


def _unreportable(android: str) -> str:
    if android == "Cancelling":
        return "a phone cannot report 'Cancelling': only the server sets it"
    allowed = ", ".join(_FROM_PHONE)
    return f"unknown Android message state {android!r} (expected one of {allowed})"


def aggregate_state(recipient_states: Sequence[str]) -> str:
    """A message's state from its recipients' Android states, by the phone's rule: any
    ``Pending`` → Pending; else any ``Processed`` → Processed; all ``Cancelled`` → Cancelled;
    all ``Delivered`` → Delivered; all ``Failed`` → Failed; else Sent. No recipients →
    Pending."""
    states = set(recipient_states)
    if not states or "Pending" in states:
        return "Pending"
    if "Processed" in states:
        return "Processed"
    if len(states) == 1:
        (only,) = states
        if only in ("Cancelled", "Delivered", "Failed"):
            return only
    return "Sent"


# --- privacy hashing ----------------------------------------------------------------------------

def hash_content(text: str) -> str:
    """The hashed form of a message's content: SHA-256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def hash_phone(e164: str) -> str:
    """The hashed form of a recipient: the first 16 hex characters of SHA-256 of the number."""
    return hashlib.sha256(e164.encode()).hexdigest()[:16]


# --- times --------------------------------------------------------------------------------------

def format_time(value: datetime) -> str:
    """``value`` as RFC 3339 in UTC with exactly 6 fractional digits and ``+00:00``
    (``2024-01-02T03:04:05.000000+00:00``), which ``datetime.fromisoformat`` reads on every
    Python the official client supports. A naive ``value`` is taken as UTC (SQLite gives back
    naive timestamps)."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "+00:00"


_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ]"
    r"(?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+\- ]\d{2}:?\d{2})?"
)


def parse_time(value: str) -> datetime:
    """An aware UTC datetime from a client's RFC 3339 / ISO 8601 date-time.

    Accepts ``Z`` or a numeric offset, any number of fractional digits (Go sends 9; digits past
    the microsecond are dropped), a naive value as UTC (the official client sends naive
    ``isoformat()``), and an offset whose ``+`` arrived as a space (an unescaped query string).
    Raises ValueError naming the value otherwise.
    """
    match = _RFC3339.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time (e.g. 2024-01-02T03:04:05Z)")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = match["offset"] or "+00:00"
    if offset in ("Z", "z"):
        offset = "+00:00"
    elif offset.startswith(" "):
        offset = "+" + offset[1:]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date-time (a field is out of range)") from None
    return parsed.astimezone(UTC)


# --- settings -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SettingRule:
    """What one settings key accepts. ``None`` is always accepted and means "unset"."""

    kind: Literal["int", "bool", "str", "choice", "time_of_day", "url"]
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable, or None when it is."""
        if value is None:
            return None
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return "must be an integer"
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum}"
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if not isinstance(value, str):
            return "must be a string"
        if self.kind == "choice" and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.kind == "time_of_day" and not _TIME_OF_DAY.fullmatch(value):
            return "must be a time of day as HH:MM (00:00 to 23:59)"
        if self.kind == "url":
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return "must be an http:// or https:// URL"
        return None


_TIME_OF_DAY = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")

_POSITIVE = SettingRule("int", minimum=1)
_BOOL = SettingRule("bool")
_SECRET = SettingRule("str")

SETTINGS_SCHEMA: Final[Mapping[str, Mapping[str, SettingRule]]] = MappingProxyType({
    "messages": MappingProxyType({
        "send_interval_min": _POSITIVE,
        "send_interval_max": _POSITIVE,
        "limit_period": SettingRule(
            "choice", ("Disabled", "PerMinute", "Per30Minutes", "PerHour", "PerDay")),
        "limit_value": _POSITIVE,
        "sim_selection_mode": SettingRule("choice", ("OSDefault", "RoundRobin", "Random")),
        "log_lifetime_days": _POSITIVE,
        "processing_order": SettingRule("choice", ("LIFO", "FIFO")),
        "work_hours_enabled": _BOOL,
        "work_hours_start": SettingRule("time_of_day"),
        "work_hours_end": SettingRule("time_of_day"),
    }),
    "webhooks": MappingProxyType({
        "internet_required": _BOOL,
        "retry_count": _POSITIVE,
        "signing_key": _SECRET,
    }),
    "encryption": MappingProxyType({"passphrase": _SECRET}),
    "ping": MappingProxyType({"interval_seconds": _POSITIVE}),
    "logs": MappingProxyType({"lifetime_days": _POSITIVE}),
    "gateway": MappingProxyType({
        "cloud_url": SettingRule("url"),
        "private_token": SettingRule("str"),
        "notification_channel": SettingRule("choice", ("AUTO", "SSE_ONLY")),
    }),
    "receiver": MappingProxyType({"content_provider_enabled": _BOOL}),
})
"""The settings a user may store, by section and key (client-go's ``DeviceSettings``)."""

_HIDDEN: Final[Mapping[str, str]] = MappingProxyType({
    "encryption": "passphrase", "webhooks": "signing_key",
})


def clean_settings(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` (a settings body) reduced to ``SETTINGS_SCHEMA``: unknown sections and keys
    are dropped silently, as the original server does; nulls are kept (a null key or section
    means "unset" to ``merge_settings``). Raises ValueError("settings.<section>.<key>: ...")
    for a known key with a wrong type or value, or a known section that is not an object."""
    if not isinstance(value, Mapping):
        raise ValueError("settings: must be an object")
    cleaned: dict[str, Any] = {}
    for section, keys in value.items():
        rules = SETTINGS_SCHEMA.get(section)
        if rules is None:
            continue
        if keys is None:
            cleaned[section] = None
            continue
        if not isinstance(keys, Mapping):
            raise ValueError(f"settings.{section}: must be an object")
        kept: dict[str, Any] = {}
        for key, item in keys.items():
            rule = rules.get(key)
            if rule is None:
                continue
            problem = rule.problem(item)
            if problem is not None:
                raise ValueError(f"settings.{section}.{key}: {problem}")
            kept[key] = item
        cleaned[section] = kept
    return cleaned


def merge_settings(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with ``patch`` (cleaned first, so it may be a raw body) merged section by
    section: a key in the patch replaces that key, other keys of the section stay; a null key
    or section removes it. The result holds no nulls. Raises ValueError as ``clean_settings``.
    A PUT (replace) is ``merge_settings({}, body)``."""
    merged: dict[str, Any] = {
        section: dict(keys) for section, keys in current.items() if isinstance(keys, Mapping)
    }
    for section, keys in clean_settings(patch).items():
        if keys is None:
            merged.pop(section, None)
            continue
        target = merged.setdefault(section, {})
        for key, item in keys.items():
            if item is None:
                target.pop(key, None)
            else:
                target[key] = item
    return merged


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``settings`` for the 3rd-party API: ``encryption.passphrase`` and
    ``webhooks.signing_key`` removed (phones read the full settings)."""
    shown: dict[str, Any] = {}
    for section, keys in settings.items():
        if isinstance(keys, Mapping):
            hidden = _HIDDEN.get(section)
            shown[section] = {key: item for key, item in keys.items() if key != hidden}
        else:
            shown[section] = keys
    return shown


# --- scopes and webhook events ------------------------------------------------------------------

_ANY_SCOPE: Final = "all:any"

SCOPES: Final[frozenset[str]] = frozenset({
    "messages:send", "messages:read", "messages:list", "messages:cancel", "messages:export",
    "devices:list", "devices:delete",
    "webhooks:list", "webhooks:write", "webhooks:delete",
    "settings:read", "settings:write",
    "inbox:list", "inbox:refresh",
    "logs:read",
    "tokens:manage",
    _ANY_SCOPE,
})
"""The JWT scopes of the 3rd-party API; Basic auth holds them all."""


def has_scope(granted: Collection[str], required: str) -> bool:
    """Whether ``granted`` allows ``required``; ``all:any`` allows everything. Raises
    ValueError when ``required`` is not a known scope (a typo in a route, not a client
    error)."""
    if required not in SCOPES:
        raise ValueError(f"unknown scope {required!r}")
    return required in granted or _ANY_SCOPE in granted


WEBHOOK_EVENTS: Final[frozenset[str]] = frozenset({
    "sms:received", "sms:data-received", "sms:sent", "sms:delivered", "sms:failed",
    "sms:cancelled", "system:ping", "mms:received", "mms:downloaded", "app:started",
    "sms:batch:received", "sms:batch:data-received", "mms:batch:received",
    "mms:batch:downloaded",
})
"""The events a webhook may be registered for (the phone sends them)."""


# --- server-sent events -------------------------------------------------------------------------

SSE_KEEPALIVE: Final = b":keepalive\n\n"
"""The comment the server writes every 15 s so proxies and the phone keep the stream open."""


def sse_frame(event_type: str, data: Mapping[str, Any] | None) -> bytes:
    """One SSE event as the phone reads it: ``event: <type>``, ``data: <compact JSON>`` (``{}``
    for no data), blank line. JSON escapes line breaks, so the data is always one line.
    Raises ValueError for an empty type or one with a line break."""
    if not event_type or "\n" in event_type or "\r" in event_type:
        raise ValueError(f"bad SSE event type {event_type!r}")
    body = json.dumps(dict(data) if data is not None else {}, separators=(",", ":"),
                      ensure_ascii=False)
    return f"event: {event_type}\ndata: {body}\n\n".encode()
