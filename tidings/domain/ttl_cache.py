"""A small time-bounded cache for hot lookups that may be a few seconds stale (who an API key
is, which app a tenant sends through). Time comes from an injected monotonic clock."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Values expire ``ttl`` seconds after they were put; at most ``max_entries`` are kept
    (the whole cache is dropped when full: simple, and refilled within one ``ttl``)."""

    def __init__(self, ttl: float, monotonic: Callable[[], float],
                 max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key: Hashable, value: V) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (self._monotonic() + self._ttl, value)

    def discard(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
