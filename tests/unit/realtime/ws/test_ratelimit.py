"""The per-connection token bucket."""

from __future__ import annotations

import pytest

from realtime.ws.ratelimit import TokenBucket


def test_starts_full_then_refuses() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.refused == 1


@pytest.mark.parametrize(
    ("elapsed", "allowed"),
    [(0.0, 0), (0.49, 0), (0.5, 1), (1.0, 2), (1.25, 2), (1.5, 3), (10.0, 3), (1000.0, 3)],
)
def test_refill_at_rate_capped_at_burst(elapsed: float, allowed: int) -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    for _ in range(3):
        assert bucket.take(100.0)
    taken = sum(bucket.take(100.0 + elapsed) for _ in range(10))
    assert taken == allowed


def test_tokens_never_exceed_burst() -> None:
    bucket = TokenBucket(rate=1000.0, burst=5)
    bucket.take(1_000_000.0)
    assert bucket.tokens == 4.0


def test_abusive_after_more_refusals_than_burst_and_reset_by_success() -> None:
    bucket = TokenBucket(rate=1.0, burst=2)
    bucket.take(0.0)
    bucket.take(0.0)
    for _ in range(2):
        assert not bucket.take(0.0)
    assert not bucket.abusive
    assert not bucket.take(0.0)
    assert bucket.abusive
    assert bucket.take(5.0)
    assert bucket.refused == 0
    assert not bucket.abusive
