"""When to try a message again: capped exponential backoff with jitter, and HTTP Retry-After.

Pure: the caller passes the attempt count, a ``random.Random`` and the current time, so tests
fix all three. The pipeline turns a delay into ``next_attempt_at = now + delay`` and decides on
its own whether that lies past ``expires_at``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_AFTER_CEILING = 86_400.0
"""The default longest wait a provider's Retry-After can impose: 24 hours."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``max_attempts`` counts every attempt, the first included: with 5, a message is tried at
    most five times. ``base_seconds`` is the wait after the first failed attempt and doubles
    each time, up to ``max_seconds``. ``jitter`` is the fraction by which each wait is spread
    either way, so messages that failed together do not come back together.
    ``max_retry_after`` bounds how long a provider's Retry-After may hold a message back.

    Raises ``ValueError`` on construction when a field is out of range.
    """

    max_attempts: int
    base_seconds: float
    max_seconds: float = 3600.0
    jitter: float = 0.2
    max_retry_after: float = RETRY_AFTER_CEILING

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not (math.isfinite(self.base_seconds) and self.base_seconds > 0):
            raise ValueError("base_seconds must be a positive number")
        if not (math.isfinite(self.max_seconds) and self.max_seconds >= self.base_seconds):
            raise ValueError("max_seconds must be a number no smaller than base_seconds")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be a fraction in [0, 1)")
        if not (math.isfinite(self.max_retry_after) and self.max_retry_after >= self.max_seconds):
            raise ValueError("max_retry_after must be a number no smaller than max_seconds")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based), before jitter.

        ``base_seconds * 2 ** (attempt - 1)``, capped at ``max_seconds``; never overflows.
        Raises ``ValueError`` when ``attempt`` is below 1.
        """
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        if attempt - 1 >= math.log2(self.max_seconds / self.base_seconds):
            return self.max_seconds
        return min(self.base_seconds * 2.0 ** (attempt - 1), self.max_seconds)

    def next_delay(
        self, attempt: int, rng: random.Random, retry_after: float | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up.

        ``attempt`` is how many attempts have been made, the one that just failed included
        (count them at claim time, so a worker that dies mid-send still uses one up). Gives up
        (``None``) when ``attempt >= max_attempts``, whatever ``retry_after`` says.

        Otherwise the delay is ``backoff(attempt)`` spread uniformly by ``± jitter`` of itself,
        so it lies in ``[b * (1 - jitter), b * (1 + jitter)]``: the cap applies before jitter,
        so retries that reached the cap still spread out, and a delay may exceed
        ``max_seconds`` by at most the jitter fraction.

        ``retry_after`` (seconds, from ``parse_retry_after``) is a floor: the delay is never
        shorter than it. It is honoured beyond ``max_seconds`` (the provider knows its own
        limits better than our backoff) but only up to ``max_retry_after`` (24 h by default);
        a longer demand is cut to that ceiling. The floor is itself spread upwards by up to
        ``jitter``, never downwards, so a burst of 429s with one Retry-After does not come
        back as one burst. Zero or negative ``retry_after`` is no floor.

        Draws from ``rng`` only; raises ``ValueError`` when ``attempt`` is below 1 or
        ``retry_after`` is NaN.
        """
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        if retry_after is not None and math.isnan(retry_after):
            raise ValueError("retry_after is not a number")
        if attempt >= self.max_attempts:
            return None
        base = self.backoff(attempt)
        delay = base * (1.0 + rng.uniform(-self.jitter, self.jitter))
        if retry_after is None or retry_after <= 0:
            return delay
        floor = min(retry_after, self.max_retry_after)
        spread_floor = min(floor * (1.0 + rng.uniform(0.0, self.jitter)), self.max_retry_after)
        return max(delay, spread_floor)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to an HTTP ``Retry-After`` header value (RFC 9110, 10.2.3).

    Accepts delay-seconds (``"120"``: ASCII digits only) or an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``, and the obsolete RFC 850 and asctime forms; a date
    without a zone is read as UTC). A date at or before ``now`` gives ``0.0``. Returns ``None``
    for a missing, empty, negative, fractional, overflowing or unparseable value: the caller
    then falls back to its own backoff. ``now`` must be timezone-aware; raises ``ValueError``
    otherwise.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
