"""Credentials as stored: API keys and one-time tokens kept only as SHA-256, shown once.

API keys look like ``jc_live_<40 url-safe chars>`` or ``jc_test_…``; the first 16 characters are
kept as a display prefix so a user can tell keys apart without the key being recoverable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum


class KeyMode(StrEnum):
    LIVE = "live"
    TEST = "test"


API_KEY_PREFIX = "jc_"
DISPLAY_PREFIX_LENGTH = 16


def new_api_key(mode: KeyMode) -> str:
    return f"{API_KEY_PREFIX}{mode.value}_{secrets.token_urlsafe(30)}"


def looks_like_api_key(token: str) -> bool:
    return token.startswith((f"{API_KEY_PREFIX}live_", f"{API_KEY_PREFIX}test_"))


def new_one_time_token() -> str:
    return secrets.token_urlsafe(32)


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
