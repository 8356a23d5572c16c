"""A token bucket per connection: `rate` commands per second, bursts of `burst`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    tokens: float = -1.0
    updated: float = 0.0
    refused: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Take one token at time `now` (seconds); False when the bucket is empty."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.refused = 0
            return True
        self.refused += 1
        return False

    @property
    def abusive(self) -> bool:
        """Still sending a whole burst's worth after being refused: time to close (4429)."""
        return self.refused > self.burst
