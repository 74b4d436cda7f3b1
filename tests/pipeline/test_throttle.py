"""In-memory token buckets: burst, refill, cap, independence of keys, bounded memory."""

from __future__ import annotations

import pytest

from tidings.pipeline.throttle import TokenBuckets, retry_after_seconds


def test_a_full_bucket_grants_rate_tokens_then_says_how_long_to_wait() -> None:
    buckets = TokenBuckets(rate=3, period=60)
    answers = [buckets.try_take("tenant", now=0.0) for _ in range(4)]
    assert answers[:3] == [None, None, None]
    assert answers[3] == pytest.approx(20.0)


def test_tokens_refill_at_rate_per_period() -> None:
    buckets = TokenBuckets(rate=3, period=60)
    for _ in range(3):
        buckets.try_take("tenant", now=0.0)
    assert buckets.try_take("tenant", now=10.0) == pytest.approx(10.0)
    assert buckets.try_take("tenant", now=20.0) is None
    assert buckets.try_take("tenant", now=20.0) == pytest.approx(20.0)


def test_an_idle_bucket_never_holds_more_than_rate() -> None:
    buckets = TokenBuckets(rate=2, period=1)
    buckets.try_take("tenant", now=0.0)
    answers = [buckets.try_take("tenant", now=3600.0) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None


def test_keys_have_separate_buckets() -> None:
    buckets = TokenBuckets(rate=1, period=60)
    assert buckets.try_take("a", now=0.0) is None
    assert buckets.try_take("a", now=0.0) is not None
    assert buckets.try_take("b", now=0.0) is None


def test_at_max_keys_only_buckets_that_would_be_full_are_forgotten() -> None:
    buckets = TokenBuckets(rate=1, period=60, max_keys=2)
    buckets.try_take("old", now=0.0)
    buckets.try_take("recent", now=100.0)
    # "old" refilled long ago (forgetting it changes nothing); "recent" is still empty.
    assert buckets.try_take("new", now=110.0) is None
    assert buckets.try_take("recent", now=110.0) == pytest.approx(50.0)


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (0.99, 1), (1.0, 1), (1.01, 2),
                                              (20.0, 20), (19.5, 20)])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(wait: float,
                                                                  header: int) -> None:
    assert retry_after_seconds(wait) == header
