"""The `BoardStore` protocol: what the director's board keeps beside the messages (issue 17).

Read marks say how far each person has read, not when. The board needs *when*: the families
who have read nothing for 30 days, and the time from a post to its first family read. So each
forward move of a guardian's read mark is logged (`ReadMove`: from `after` to `upto`, at `at`),
for a bounded time (`purge`). It also keeps when the school last reminded the unread families
of an announcement by e-mail, so that two gateways never send the reminder twice in a day.

Contract (checked by tests/contract/test_board_store.py against every adapter):

- Times are seconds since the epoch (floats), given by the caller: the store has no clock.
- `first_reads` answers, per channel and asked seq, the earliest `at` of a move by one of the
  users asked with `after < seq <= upto`; a seq nobody asked has passed is absent.
- `claim_reminder` is a compare-and-set: of two calls for one announcement within `every`
  seconds, exactly one gets None (go ahead); the other gets the time of the first.
- `forget_user` erases every move of a user (GDPR); `reads_of` lists them (export).
- Every method raises `StoreUnavailable` (persistence/store.py) when the backend cannot be
  reached or does not answer in time; nothing is half-written then (but see `record_reads`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ReadMove:
    """A user's read mark in `channel` moved from `after` to `upto` at `at`: they read the
    messages with `after < seq <= upto` then."""

    user_id: str
    channel: str
    after: int
    upto: int
    at: float


def first_times(moves: Iterable[tuple[int, int, float]], seqs: Iterable[int]) -> dict[int, float]:
    """The earliest time each seq was passed by one of the moves `(after, upto, at)`: the rule
    both adapters apply to the moves they read."""
    wanted = sorted(set(seqs))
    out: dict[int, float] = {}
    for after, upto, at in moves:
        for seq in wanted[bisect.bisect_right(wanted, after):bisect.bisect_right(wanted, upto)]:
            if seq not in out or at < out[seq]:
                out[seq] = at
    return out


class BoardStore(Protocol):
    async def open(self) -> None:
        """Connect and create the tables or indexes if missing."""
        ...

    async def close(self) -> None: ...

    async def record_reads(self, moves: Sequence[ReadMove]) -> None:
        """Log forward moves of read marks in one write (SQLite: one transaction; MongoDB: one
        `insert_many`, which a failure may leave part-done: a move lost or logged twice only
        moves a figure by one read)."""
        ...

    async def last_reads(self, user_ids: Iterable[str]) -> dict[str, float]:
        """For those of `user_ids` with a logged move: the time of their latest one."""
        ...

    async def first_reads(self, wanted: Mapping[str, Iterable[int]], user_ids: Iterable[str]
                          ) -> dict[str, dict[int, float]]:
        """Per channel of `wanted` (every one is a key): for each of its seqs passed by a move
        of one of `user_ids`, the earliest such move's time."""
        ...

    async def claim_reminder(self, channel: str, seq: int, at: float, every: float) -> float | None:
        """Atomically: when no reminder of the message `(channel, seq)` was claimed after
        `at - every`, record one at `at` and return None; else return the time of that one."""
        ...

    async def release_reminder(self, channel: str, seq: int, at: float) -> None:
        """Forget the reminder claimed at `at` for the message (none of its e-mails went out),
        unless another was claimed since."""
        ...

    async def reads_of(self, user_id: str) -> list[ReadMove]:
        """Every logged move of one user, oldest first (the privacy export)."""
        ...

    async def forget_user(self, user_id: str) -> int:
        """Erase every logged move of a user; return how many."""
        ...

    async def purge(self, before: float) -> int:
        """Drop the moves logged before `before` and the reminders claimed before it."""
        ...
