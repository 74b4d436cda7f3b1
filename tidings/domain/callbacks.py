"""Callbacks the gateway POSTs to tenants' URLs: how they are signed and when they are retried.

Two ways to sign, either or both per callback URL:

- HMAC: ``X-Tidings-Timestamp: <unix seconds>`` and
  ``X-Tidings-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``.
  The timestamp is inside the signed bytes, so a captured callback cannot be replayed later
  with a fresh timestamp; receivers check it with ``verify_hmac`` (also what our tests use).
- Bearer JWT: ``Authorization: Bearer <HS256 JWT>`` with claims ``iat``, ``exp``, ``jti`` and
  ``tenant_id`` only; a receiver decodes it with any JWT library and may remember ``jti``
  until ``exp`` to refuse replays.

Retries back off exponentially without jitter: callbacks for one message must reach the
receiver in order, and a fixed schedule is one tests can state exactly.

Pure: the caller passes the clock (``now_seconds``, ``now``) and every id.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from datetime import datetime

import jwt

TIMESTAMP_HEADER = "X-Tidings-Timestamp"
SIGNATURE_HEADER = "X-Tidings-Signature"
SIGNATURE_PREFIX = "sha256="

MAX_APPLICATION_DIGITS = 8
"""A destination with at most this many digits is an application's short code, not a person."""

_TIMESTAMP = re.compile(r"-?[0-9]{1,19}")
_DIGITS = frozenset("0123456789")


def _hmac_hex(secret: str, body: bytes, timestamp: str) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def hmac_headers(secret: str, body: bytes, now_seconds: int) -> dict[str, str]:
    """The HMAC signing headers for a callback whose raw body is ``body``, sent at ``now_seconds``.

    The signature covers ``b"<now_seconds>." + body`` under ``secret`` (UTF-8), so the body
    must be sent byte for byte as signed.
    """
    timestamp = str(now_seconds)
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: SIGNATURE_PREFIX + _hmac_hex(secret, body, timestamp),
    }


def verify_hmac(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now_seconds: int,
    tolerance_seconds: int = 300,
) -> bool:
    """Whether the header values ``timestamp`` and ``signature`` sign ``body`` under ``secret``.

    The receiver's side of ``hmac_headers``, for tenants' receivers and our tests. False when
    ``timestamp`` is not a plain integer (ASCII digits, optional leading ``-``) or lies more
    than ``tolerance_seconds`` either side of ``now_seconds``, or when the signature differs;
    the signature is compared in constant time. Never raises on malformed header values.
    """
    if _TIMESTAMP.fullmatch(timestamp) is None:
        return False
    if abs(now_seconds - int(timestamp)) > tolerance_seconds:
        return False
    expected = SIGNATURE_PREFIX + _hmac_hex(secret, body, timestamp)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))


def callback_jwt(
    secret: str, *, tenant_id: str, jti: str, now_seconds: int, lifetime_seconds: int = 300
) -> str:
    """An HS256 JWT under ``secret`` authenticating one callback to the tenant ``tenant_id``.

    Claims are exactly ``iat`` (``now_seconds``), ``exp`` (``now_seconds + lifetime_seconds``),
    ``jti`` (unique per callback attempt, for the receiver's replay check) and ``tenant_id``.
    """
    claims = {
        "iat": now_seconds,
        "exp": now_seconds + lifetime_seconds,
        "jti": jti,
        "tenant_id": tenant_id,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer_header(token: str) -> dict[str, str]:
    """The ``Authorization`` header carrying ``token`` (from ``callback_jwt``) as a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def retry_delay_seconds(attempt: int, *, base_seconds: float, cap_seconds: float = 3600.0) -> float:
    """Seconds to wait after the ``attempt``-th failed delivery (1-based) before the next one.

    ``base_seconds * 2 ** (attempt - 1)`` capped at ``cap_seconds``: 10, 20, 40, 80 ... for a
    base of 10. No jitter, so the schedule is exact. Any attempt number is safe: once the
    doubling would pass the cap the cap is returned without computing the power.
    Raises ``ValueError`` when ``attempt`` is below 1, or when ``base_seconds`` or
    ``cap_seconds`` is negative or not finite (so the delay is never negative).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not (math.isfinite(base_seconds) and base_seconds >= 0):
        raise ValueError("base_seconds must be a finite number, zero or more")
    if not (math.isfinite(cap_seconds) and cap_seconds >= 0):
        raise ValueError("cap_seconds must be a finite number, zero or more")
    if base_seconds == 0 or cap_seconds == 0:
        return 0.0
    doublings = attempt - 1
    # Compared as logarithms, so a tiny base under a large cap cannot overflow the ratio either.
    if doublings >= math.log2(cap_seconds) - math.log2(base_seconds):
        return float(cap_seconds)
    return min(math.ldexp(base_seconds, doublings), float(cap_seconds))


def gives_up(first_attempt_at: datetime, now: datetime, max_age_seconds: float) -> bool:
    """Whether a callback first tried at ``first_attempt_at`` is too old to try again at ``now``.

    True once ``now - first_attempt_at`` reaches ``max_age_seconds`` (at the limit, not after).
    Both datetimes must be timezone-aware; raises ``ValueError`` otherwise.
    """
    if first_attempt_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("first_attempt_at and now must be timezone-aware")
    return (now - first_attempt_at).total_seconds() >= max_age_seconds


def is_application_bound(address: str) -> bool:
    """Whether an inbound SMS sent to ``address`` is for an application (A2P), not a person (P2P).

    Counts only the ASCII digits 0-9 in ``address`` (``+``, spaces and letters are ignored):
    ``MAX_APPLICATION_DIGITS`` (8) or fewer is an application's short code, so True; 9 or more
    is a full MSISDN, so False. An alphanumeric address, with no digits at all, is True.
    """
    digits = sum(1 for char in address if char in _DIGITS)
    return digits <= MAX_APPLICATION_DIGITS
