"""The reconnect backoff of the Redis brokers: redis-py's equal-jitter policy, capped."""

from __future__ import annotations

from channels.redis import Backoff


def test_delays_double_up_to_the_cap_each_in_its_upper_half() -> None:
    backoff = Backoff(0.05, 1.0)
    for _ in range(20):  # jitter: draw several series
        backoff.reset()
        delays = [backoff.next_delay() for _ in range(40)]
        bounds = [min(1.0, 0.05 * 2**i) for i in range(40)]
        assert all(bound / 2 <= delay <= bound for delay, bound in zip(delays, bounds, strict=True))


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(0.05, 1.0)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 0.05
