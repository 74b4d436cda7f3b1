"""Retry policy: capped exponential backoff with jitter, Retry-After, and parsing the header."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidings.domain.retry import RETRY_AFTER_CEILING, RetryPolicy, parse_retry_after

POLICY = RetryPolicy(max_attempts=10, base_seconds=2.0, max_seconds=60.0, jitter=0.2)
DRAWS = 200


@pytest.mark.parametrize(("fields", "message"), [
    pytest.param({"max_attempts": 0, "base_seconds": 1.0}, "max_attempts", id="no-attempts"),
    pytest.param({"max_attempts": 3, "base_seconds": 0.0}, "base_seconds", id="zero-base"),
    pytest.param({"max_attempts": 3, "base_seconds": float("nan")}, "base_seconds", id="nan-base"),
    pytest.param({"max_attempts": 3, "base_seconds": 10.0, "max_seconds": 5.0}, "max_seconds",
                 id="cap-below-base"),
    pytest.param({"max_attempts": 3, "base_seconds": 1.0, "max_seconds": float("inf")},
                 "max_seconds", id="infinite-cap"),
    pytest.param({"max_attempts": 3, "base_seconds": 1.0, "jitter": -0.1}, "jitter",
                 id="negative-jitter"),
    pytest.param({"max_attempts": 3, "base_seconds": 1.0, "jitter": 1.0}, "jitter",
                 id="jitter-of-one"),
    pytest.param({"max_attempts": 3, "base_seconds": 1.0, "max_retry_after": 10.0},
                 "max_retry_after", id="retry-after-ceiling-below-cap"),
])
def test_a_policy_out_of_range_is_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**fields)  # type: ignore[arg-type]


def test_the_defaults_cap_at_an_hour_with_twenty_percent_jitter_and_a_day_of_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0)
    assert (policy.max_seconds, policy.jitter, policy.max_retry_after) == (3600.0, 0.2, 86_400.0)
    assert RETRY_AFTER_CEILING == 86_400.0


@pytest.mark.parametrize(("attempt", "expected"), [
    pytest.param(1, 2.0, id="first"),
    pytest.param(2, 4.0, id="second"),
    pytest.param(3, 8.0, id="third"),
    pytest.param(5, 32.0, id="fifth"),
    pytest.param(6, 60.0, id="capped"),
    pytest.param(9, 60.0, id="still-capped"),
    pytest.param(100_000, 60.0, id="huge-attempt-no-overflow"),
])
def test_backoff_doubles_from_base_up_to_the_cap(attempt: int, expected: float) -> None:
    assert POLICY.backoff(attempt) == expected


@pytest.mark.parametrize("attempt", range(1, POLICY.max_attempts))
def test_next_delay_stays_within_jitter_of_the_backoff(attempt: int) -> None:
    rng = random.Random(attempt)
    backoff = POLICY.backoff(attempt)
    delays = [POLICY.next_delay(attempt, rng) for _ in range(DRAWS)]
    assert all(d is not None and backoff * 0.8 <= d <= backoff * 1.2 for d in delays)
    spread = [d for d in delays if d is not None]
    assert min(spread) < backoff < max(spread)


def test_without_jitter_the_delay_is_the_backoff() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=3.0, max_seconds=20.0, jitter=0.0)
    rng = random.Random(1)
    assert [policy.next_delay(n, rng) for n in range(1, 6)] == [3.0, 6.0, 12.0, 20.0, None]


def test_the_same_seed_gives_the_same_delays() -> None:
    first, second = random.Random(42), random.Random(42)
    assert ([POLICY.next_delay(n, first) for n in range(1, 10)]
            == [POLICY.next_delay(n, second) for n in range(1, 10)])


@pytest.mark.parametrize(("policy", "attempt"), [
    pytest.param(POLICY, 10, id="at-max-attempts"),
    pytest.param(POLICY, 11, id="past-max-attempts"),
    pytest.param(RetryPolicy(max_attempts=1, base_seconds=1.0), 1, id="single-attempt-policy"),
])
def test_next_delay_gives_up_at_max_attempts(policy: RetryPolicy, attempt: int) -> None:
    assert policy.next_delay(attempt, random.Random(0)) is None
    assert policy.next_delay(attempt, random.Random(0), retry_after=5.0) is None


def test_the_last_retry_before_giving_up_is_still_offered() -> None:
    assert POLICY.next_delay(POLICY.max_attempts - 1, random.Random(0)) is not None


# attempt 1 of POLICY: backoff 2 s, so the plain delay lies in [1.6, 2.4].
@pytest.mark.parametrize(("retry_after", "low", "high"), [
    pytest.param(30.0, 30.0, 36.0, id="longer-than-backoff-is-a-floor"),
    pytest.param(1.0, 1.6, 2.4, id="shorter-than-backoff-changes-nothing"),
    pytest.param(0.0, 1.6, 2.4, id="zero-is-no-floor"),
    pytest.param(-3.0, 1.6, 2.4, id="negative-is-no-floor"),
    pytest.param(600.0, 600.0, 720.0, id="beyond-max-seconds-is-honoured"),
    pytest.param(86_000.0, 86_000.0, 86_400.0, id="near-the-ceiling-spreads-up-to-it"),
    pytest.param(3 * 86_400.0, 86_400.0, 86_400.0, id="beyond-the-ceiling-is-cut-to-it"),
    pytest.param(float("inf"), 86_400.0, 86_400.0, id="infinite-is-cut-to-the-ceiling"),
])
def test_retry_after_is_never_undercut_and_bounded_by_the_ceiling(
        retry_after: float, low: float, high: float) -> None:
    rng = random.Random(7)
    delays = [POLICY.next_delay(1, rng, retry_after=retry_after) for _ in range(DRAWS)]
    assert all(d is not None and low <= d <= high for d in delays)


def test_retry_after_is_spread_upwards_so_a_burst_does_not_return_as_one() -> None:
    rng = random.Random(3)
    delays = {POLICY.next_delay(1, rng, retry_after=30.0) for _ in range(DRAWS)}
    assert len(delays) > DRAWS // 2


def test_without_jitter_retry_after_is_exact() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0, jitter=0.0)
    assert policy.next_delay(1, random.Random(0), retry_after=45.0) == 45.0


@pytest.mark.parametrize(("attempt", "retry_after"), [
    pytest.param(0, None, id="attempt-zero"),
    pytest.param(-1, None, id="negative-attempt"),
    pytest.param(1, float("nan"), id="nan-retry-after"),
])
def test_next_delay_refuses_nonsense(attempt: int, retry_after: float | None) -> None:
    with pytest.raises(ValueError, match="attempt|retry_after"):
        POLICY.next_delay(attempt, random.Random(0), retry_after=retry_after)


NOW = datetime(2015, 10, 21, 7, 26, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("120", 120.0, id="delta-seconds"),
    pytest.param(" 120 ", 120.0, id="delta-seconds-with-spaces"),
    pytest.param("0", 0.0, id="zero"),
    pytest.param("007", 7.0, id="leading-zeros"),
    pytest.param(None, None, id="absent"),
    pytest.param("", None, id="empty"),
    pytest.param("   ", None, id="blank"),
    pytest.param("-5", None, id="negative"),
    pytest.param("+5", None, id="signed"),
    pytest.param("1.5", None, id="fractional"),
    pytest.param("1e3", None, id="exponent"),
    pytest.param("nan", None, id="nan"),
    pytest.param("\u0661\u0662\u0660", None, id="non-ascii-digits"),
    pytest.param("9" * 400, None, id="overflowing"),
    pytest.param("soon", None, id="garbage"),
    pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 120.0, id="http-date"),
    pytest.param("Wednesday, 21-Oct-15 07:28:00 GMT", 120.0, id="rfc850-date"),
    pytest.param("Wed Oct 21 07:28:00 2015", 120.0, id="asctime-date-read-as-utc"),
    pytest.param("Wed, 21 Oct 2015 09:28:00 +0200", 120.0, id="date-with-offset"),
    pytest.param("Wed, 21 Oct 2015 07:26:00 GMT", 0.0, id="date-now"),
    pytest.param("Wed, 21 Oct 2015 07:20:00 GMT", 0.0, id="date-in-the-past"),
    pytest.param("Wed, 31 Feb 2015 07:28:00 GMT", None, id="impossible-date"),
    pytest.param("Wed, 21 Oct 99999 07:28:00 GMT", None, id="year-out-of-range"),
    pytest.param("21 Oct 2015", None, id="date-without-time"),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_compares_dates_across_zones() -> None:
    now = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 120.0


def test_parse_retry_after_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_retry_after("120", NOW.replace(tzinfo=None))
