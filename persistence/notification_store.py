"""The `NotificationStore` protocol: what quiet hours, preferences, the e-mail digest and
scheduled posts keep (issue 12, part B).

Contract (checked by tests/contract/test_notification_store.py against every adapter):

- Times are seconds since the epoch (floats), given by the caller: the store has no clock.
- Quiet hours: one `QuietHours` per school, None until set. Preferences: one `Preferences`
  per person, None until set.
- Digest entries: one per (person, channel, seq), added twice = once. `claim_digest` is a
  compare-and-set on the person's digest state: it succeeds only when the person's next
  allowed send time (`next_at`, 0 when never claimed) is ≤ `now`, and then sets it to
  `now + lease`, so that of two gateways asking at once exactly one succeeds.
  `finish_digest` removes the entries sent (or left out) and sets `next_at` (the end of
  the period when an e-mail went out, `now` when there was nothing to say).
- Scheduled posts: `claim_due` is a compare-and-set per post: it hands out pending posts
  whose `at` ≤ `now` and whose lease has ended (`claimed_until` ≤ `now`), each to one caller,
  and extends their lease to `now + lease`. A post claimed and never marked published is
  handed out again after its lease (a gateway that died between claim and publish).
  `mark_published` ends it (state `published`, its `seq`); `cancel_scheduled` ends a pending
  post of its author that is not claimed right now.
- `erase_person` removes a person's preferences, digest entries and digest state and their
  pending scheduled posts; published ones are only the record of a post already in the
  message store.
- Every method raises `StoreUnavailable` (persistence/store.py) when the backend cannot be
  reached or does not answer in time.

`open_notification_store(url)` (persistence/factory.py) picks the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from school.preferences import Preferences
from school.quiet_hours import QuietHours

ScheduledState = Literal["pending", "published", "cancelled", "dropped"]


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """A message a person is to hear of in their next digest."""

    user_id: str
    channel: str
    seq: int
    kind: str
    added_at: float


@dataclass(frozen=True, slots=True)
class ScheduledPost:
    """A post to publish at `at` (epoch seconds). `key` is the idempotency key it is
    published with (derived from `id`). `seq` is given when it is published."""

    id: str
    author_id: str
    channel: str
    kind: str
    data: dict[str, Any]
    at: float
    created_at: float
    state: ScheduledState = "pending"
    claimed_until: float = 0.0
    attempts: int = 0
    seq: int | None = None

    @property
    def key(self) -> str:
        return f"scheduled:{self.id}"

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "channel": self.channel, "kind": self.kind, "data": self.data,
                "at": int(self.at * 1000), "state": self.state, "seq": self.seq}


class NotificationStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- quiet hours and preferences
    async def get_quiet_hours(self, school_id: str) -> QuietHours | None: ...

    async def set_quiet_hours(self, school_id: str, rules: QuietHours) -> None: ...

    async def get_preferences(self, user_id: str) -> Preferences | None: ...

    async def set_preferences(self, user_id: str, prefs: Preferences) -> None: ...

    # -- the e-mail digest
    async def add_digest(self, entry: DigestEntry) -> None: ...

    async def add_digests(self, entries: list[DigestEntry]) -> None:
        """`add_digest` for each, in one write: a message's offline families at once."""
        ...

    async def digest_entries(self, user_id: str) -> list[DigestEntry]: ...

    async def digest_users(self, now: float, limit: int, after: str = "") -> list[str]:
        """People with digest entries whose next allowed send time is ≤ `now`, in id order,
        those after `after` (a page's last id: the next page)."""
        ...

    async def claim_digest(self, user_id: str, now: float, lease: float) -> bool: ...

    async def finish_digest(self, user_id: str, done: list[tuple[str, int]], next_at: float) -> None: ...

    # -- scheduled posts
    async def add_scheduled(self, post: ScheduledPost) -> ScheduledPost:
        """Store `post`; when its id is taken already (a retried `publish` with the same `key`),
        nothing is written and the stored post is returned."""
        ...

    async def get_scheduled(self, post_id: str) -> ScheduledPost | None: ...

    async def scheduled_of(self, author_id: str) -> list[ScheduledPost]:
        """The author's pending posts, soonest first."""
        ...

    async def cancel_scheduled(self, post_id: str, author_id: str, now: float) -> bool: ...

    async def claim_due(self, now: float, lease: float, limit: int) -> list[ScheduledPost]: ...

    async def mark_published(self, post_id: str, seq: int | None) -> None:
        """End a claimed post: published with `seq`, or (seq None) dropped because it could
        not be published any more (its author may no longer post there)."""
        ...

    # -- privacy
    async def erase_person(self, user_id: str, *, dry_run: bool) -> int: ...
