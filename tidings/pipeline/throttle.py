"""Token buckets keyed by name (a tenant, later an SMS app): ``rate`` tokens per ``period``
seconds, bursting up to ``rate``. In memory, for one node; a shared Redis bucket joins later with
the pipeline so that several nodes draw from one budget."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One bucket per key. ``now`` is a monotonic time in seconds, passed in for testability."""

    def __init__(self, rate: int, period: float, max_keys: int = 100_000) -> None:
        self._capacity = float(rate)
        self._per_second = rate / period
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def try_take(self, key: str, now: float) -> float | None:
        """Take one token for ``key``: None when granted, else seconds until one is available."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self._capacity, now)
        bucket.tokens = min(self._capacity,
                            bucket.tokens + (now - bucket.updated) * self._per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._per_second

    def _forget_full(self, now: float) -> None:
        """Drop buckets that would be full by now: forgetting them changes nothing."""
        refill = self._capacity / self._per_second
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < refill}


def retry_after_seconds(wait: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))
