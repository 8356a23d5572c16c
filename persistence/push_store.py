"""The `PushStore` protocol: Web Push subscriptions, the VAPID key, and what was sent.

Contract (tests/contract/test_push_store.py runs it on each adapter):

- `vapid_key(candidate)` keeps the first key ever offered and answers it: two processes
  starting on one store with different candidates both get the same key (insert if absent,
  then read back).
- `add_subscription(sub)`: one subscription per endpoint. The same endpoint again answers the
  stored subscription's id, now owned by `sub.user_id` / `sub.session_id` with `sub`'s keys
  (a browser re-subscribing after another person signed in on it).
- `remove_subscription(id, user_id)` removes it only when `user_id` owns it (None: any owner).
- `mark_sent(channel, seq, subscription)` records one push: True the first time only — the
  "sent" record that makes sending idempotent.
- `count(channel, seq, user_id, outcome)` counts one outcome (`push`, `email`, `held`,
  `failed`) per person and message: True the first time only. `report` answers the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Outcome = Literal["push", "email", "held", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("push", "email", "held", "failed")
MAX_KEY_CHARS = 256  # a subscription's p256dh (87 characters) or auth (22), with room to spare


@dataclass(frozen=True, slots=True)
class PushSubscription:
    id: str
    user_id: str
    session_id: str | None
    endpoint: str
    p256dh: str
    auth: str
    created_at: float


class PushStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def vapid_key(self, candidate: str) -> str:
        """The store's VAPID private key (PEM): `candidate` when none was kept yet."""

    async def add_subscription(self, sub: PushSubscription) -> str:
        """The id of the endpoint's subscription (`sub.id` when it is new)."""

    async def subscription(self, subscription_id: str) -> PushSubscription | None: ...

    async def subscriptions_of(self, user_ids: list[str]) -> dict[str, list[PushSubscription]]:
        """The subscriptions of these users (users without any are left out)."""

    async def remove_subscription(self, subscription_id: str, user_id: str | None = None) -> bool: ...

    async def remove_subscriptions_of(self, user_id: str) -> int: ...

    async def mark_sent(self, channel: str, seq: int, subscription_id: str) -> bool: ...

    async def was_sent(self, channel: str, seq: int, subscription_id: str) -> bool: ...

    async def count(self, channel: str, seq: int, user_id: str, outcome: Outcome) -> bool: ...

    async def count_many(self, channel: str, seq: int, user_ids: list[str], outcome: Outcome) -> int:
        """`count` for each person, in one write; how many were new."""
        ...

    async def report(self, channel: str, seq: int) -> dict[str, int]:
        """`{push, email, held, failed}` for one message."""
