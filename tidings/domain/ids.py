"""Sortable text ids: 48 bits of milliseconds then 80 random bits, as 26 Crockford base32 chars.

Ids sort by creation time (so the newest rows are at one end of an index) and are unguessable,
so an id never tells one tenant anything about another's data.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now_ms: int | None = None) -> str:
    """A new 26-character id; ``now_ms`` fixes the timestamp part (tests, backfills)."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
