"""The `Store` protocol: what every storage adapter guarantees.

Contract (checked by tests/contract/test_store.py against every adapter):

- `append` is atomic: it gives the message the channel's next `seq` (1, 2, 3, ...
  with no holes), stores it durably and records the idempotency `key`, all in
  one backend operation. When `(channel, author, key)` was already appended, it
  stores nothing and returns the original message with `created=False`.
- Reads see every append that completed before they started.
- `history` and `recover` return messages in ascending `seq`; a deleted message
  keeps its `seq` and comes back with `deleted=True` and empty data.
- With a byte budget (`max_bytes`), `recover`, `recover_many` and `history` read newest
  first and stop at the budget, so that what one read holds is about `max_bytes`, not
  the count cap times the largest message: they keep the newest messages whose
  *estimated* reply sizes add up to at most `max_bytes`, and always the newest one
  (a reply must make progress); `complete` is false / `more` is true when messages were
  left out. The estimate is the message's data in bytes (SQLite: its stored JSON in
  UTF-8, exact; MongoDB: the BSON size of `data`, within a few percent) plus
  `envelope_bytes(channel)`, a lower bound of the rest of its wire form: a safe
  approximation, never far below the truth. The exact cut, in wire bytes, stays the
  gateway's (`realtime.engine.recovery.newest_within`); with SQLite's lower-bound
  estimate the store never cuts more than the gateway would.
- `mark_read` only moves a user's read mark forward and says whether it moved.
- The directory is stored whole or changed in one transaction (`save_directory`).
- Every method raises `StoreUnavailable` when the backend cannot be reached or does
  not answer within the adapter's per-operation deadline; nothing is half-written then.
  An operation refused at its deadline before it started was not applied at all.
- `ping` reflects the write path, not only reads (see `Store.ping`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from school.directory import Chat, Directory, Person, School, SchoolClass, Student
from school.errors import Unavailable
from school.messages import Author, Draft, JSONDict, Message

DirectoryItem = School | Person | SchoolClass | Student | Chat

# What a message takes in a reply beyond its data's JSON, at the least: its wire form with
# empty strings, one-digit numbers and `edited: null` (about 110 bytes), without the "{}" of
# the data. `envelope_bytes` adds the channel's name.
_EMPTY = Message("", 0, "", 0, Author("", "", ""), "", {}).to_wire()
MIN_ENVELOPE = len(json.dumps(_EMPTY, ensure_ascii=False, separators=(",", ":")).encode()) - 2


def envelope_bytes(channel: str) -> int:
    """A lower bound of the bytes a message of `channel` takes in a reply, its data aside:
    the per-message overhead of the stores' byte budgets."""
    return MIN_ENVELOPE + len(channel.encode())


def newest_within_budget(sizes: Iterable[int], max_bytes: int) -> tuple[int, int]:
    """How many of `sizes` (newest first) the budget keeps, and the bytes they take: the
    rule of every adapter's byte cut (an adapter may compute it in its backend). The first
    is always kept; then each while the running total stays within `max_bytes`."""
    kept = used = 0
    for size in sizes:
        if kept and used + size > max_bytes:
            break
        kept += 1
        used += size
    return kept, used


class StoreUnavailable(Unavailable):
    """The backend cannot be reached or did not answer in time. The detail (for the logs)
    is `str(exc)`; the client is only told to retry shortly."""

    def __init__(self, detail: str) -> None:
        super().__init__("storage is unavailable, try again shortly")
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Appended:
    message: Message
    created: bool


@dataclass(frozen=True, slots=True)
class Recovery:
    """Messages above `since` (the newest `cap` of them) and the channel's latest `seq`."""

    messages: list[Message]
    latest: int
    complete: bool


class Store(Protocol):
    async def open(self) -> None:
        """Connect and create the schema and indexes if missing."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Readiness: raise `StoreUnavailable` unless the store can serve reads AND take
        writes. Answering reads is not enough: a store whose disk is full, or a replica set
        without a majority, answers reads while every publish fails. Each adapter checks the
        write path its own way (SQLite: after a write refused for lack of space or by an
        I/O error, a probe write must succeed; MongoDB: a majority-acknowledged write)."""

    # -- messages -------------------------------------------------------------

    async def append(self, draft: Draft) -> Appended: ...

    async def latest_seqs(self, channels: Iterable[str]) -> dict[str, int]:
        """The latest `seq` of each channel (0 for a channel without messages)."""

    async def recover(
        self, channel: str, since: int, cap: int, *, max_bytes: int | None = None
    ) -> Recovery:
        """Messages with `seq > since`: all of them when at most `cap` (and within
        `max_bytes`), else the newest that are, with `complete=False`."""

    async def recover_many(
        self, since: Mapping[str, int], cap: int, *, max_bytes: int | None = None
    ) -> dict[str, Recovery]:
        """`recover` for several channels at once (one round trip where the backend allows).
        `max_bytes` is shared by the channels, as in one reply: each takes what it keeps from
        what the channels before it (in the mapping's order) left; each keeps at least its
        newest message."""

    async def updates(self, upto: Mapping[str, int], after_ts: int) -> dict[str, list[Message]]:
        """For each channel, its messages with `seq <= upto[channel]` edited or deleted at or
        after `after_ts` (ms), ascending: what a client away since then holds stale (at or
        after: sending one twice is harmless, missing one is not)."""

    async def history(
        self, channel: str, before: int | None, limit: int, *, max_bytes: int | None = None
    ) -> tuple[list[Message], bool]:
        """Up to `limit` messages just below `before` (None: above the latest), ascending,
        within `max_bytes` (at least one), and whether older ones exist (left out by the
        limit or the budget)."""

    async def get(self, channel: str, seq: int) -> Message | None: ...

    async def range(self, channel: str, after: int, upto: int) -> list[Message]:
        """Messages with `after < seq <= upto`, ascending (gap filling)."""

    async def edit(self, channel: str, seq: int, data: JSONDict, ts: int) -> Message | None:
        """Replace a message's data and set `edited`; None if missing or deleted."""

    async def delete(self, channel: str, seq: int, ts: int) -> Message | None:
        """Mark a message deleted and drop its data; None if missing."""

    # -- read marks -----------------------------------------------------------

    async def mark_read(self, user_id: str, channel: str, seq: int) -> int:
        """Move the user's read mark in `channel` up to `seq`; return the previous mark."""

    async def read_marks(self, channel: str, user_ids: Iterable[str]) -> dict[str, int]:
        """Each user's read mark in `channel` (0 when never read)."""

    async def user_read_marks(self, user_id: str) -> dict[str, int]:
        """Every read mark of one user, by channel."""

    # -- the director's board (issue 17): batched reads ---------------------------------

    async def read_marks_many(self, channels: Iterable[str], user_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """The read marks of many users in many channels in one read: by channel (every
        channel asked is a key), the users with a mark there (a user absent has mark 0)."""

    async def recent_messages(self, channels: Iterable[str], limit: int, *, since_ts: int = 0
                              ) -> dict[str, list[Message]]:
        """For each channel (every one asked is a key), its newest `limit` messages that are
        not deleted and have `ts >= since_ts`, ascending. Messages are appended in time order:
        an adapter may stop reading a channel newest first at a message a minute older than
        `since_ts` (a message appended more than a minute out of order may then be left out)."""

    async def recent_times(self, channels: Iterable[str], limit: int, *, since_ts: int = 0
                           ) -> dict[str, list[tuple[int, int]]]:
        """`recent_messages` without the messages: their `(seq, ts)` only (a week of posts
        counted and timed, not read)."""

    # -- children's data (issue 15): export, erasure, the school year's purge -----------

    async def messages_by(self, author_id: str) -> list[Message]:
        """Every message that names `author_id` as its author (deleted ones included), by
        channel then `seq`: what the person wrote, for their export and erasure."""

    async def redact(self, channel: str, seq: int, ts: int) -> Message | None:
        """Erase one message for its author's erasure: it keeps its `seq`, `id`, `ts`, kind and
        the author's role, and loses its content, its author's id and name and its idempotency
        key; it is `deleted`, with `edited = ts` (so `updates` reports it). A second call
        changes nothing and returns the same message; None if missing."""

    async def forget_read_marks(self, user_id: str) -> int:
        """Remove every read mark of one user; how many there were."""

    async def purge_channels(self, channels: Iterable[str], before_ts: int) -> int:
        """The purge of a school year (its classes' channels, months after its end): remove the
        messages of these channels with `ts < before_ts` (ms), and the read marks that point
        at none but those; how many messages were removed. The newest of them stays as an
        empty tombstone (deleted, no data, no author, as `redact` leaves it) so that the
        channel's `seq` never goes back: a class id used again the next year continues it."""

    # -- directory ------------------------------------------------------------

    async def load_directory(self) -> Directory: ...

    async def directory_version(self) -> int:
        """A counter that `touch_directory` moves: gateways poll it to reload the directory
        after an offline change (a CLI import), which no broker event announced."""

    async def touch_directory(self) -> int:
        """Move the directory version forward; return the new version."""

    async def save_directory(
        self, upserts: Iterable[DirectoryItem], deletions: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        """Upsert entities and delete others (`{"people": [...], "students": [...], ...}`)
        in one transaction."""
