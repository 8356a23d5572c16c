"""The `AuthStore` protocol: what sign-in keeps (issue 11).

Sign-in state lives apart from messages: one-time codes, device sessions with their
refresh credentials, who has ever signed in, and the invitations sent. The rules (how long
a code lives, when a session ends...) are in `auth/codes.py` and `auth/sessions.py`; the
store only keeps records and offers the atomic steps those rules need.

Contract (checked by tests/contract/test_auth_store.py against every adapter):

- Times are seconds since the epoch (floats), given by the caller: the store has no clock.
- Hashes are bytes; the store never sees a code or a refresh credential in clear.
- One-time codes: one `CodeState` per e-mail address, replaced only by compare-and-set on
  its `version` (`swap_code`), so that two gateways acting on one address at once cannot
  both succeed (two verifications of one code, two codes passing the request limit).
- Sessions: `rotate_refresh` is a compare-and-set of the current refresh hash of a live
  session: of two calls with the same expected hash, exactly one succeeds. The hash it
  replaces is remembered (at least the last `REMEMBERED_HASHES` of each session) so that
  `find_refresh` recognises a superseded credential: reuse of a stolen one.
- An ended session stays ended: `rotate_refresh` fails on it, `end_session` reports it was
  not live, and its `ended_at` and `end_reason` never change.
- `create_session` records the user's first sign-in (`first_sign_ins`) in the same step.
- Every method raises `StoreUnavailable` (persistence/store.py) when the backend cannot be
  reached or does not answer in time; nothing is half-written then.

`open_auth_store(url)` (persistence/factory.py) picks the adapter from the store URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

REMEMBERED_HASHES: Final = 100  # superseded refresh hashes kept per session, at least


@dataclass(frozen=True, slots=True)
class CodeState:
    """What is known about one-time codes for one e-mail address.

    `version` counts the writes of this address's record (the first stored record has
    version 1). `code_hash` is the keyed hash of the pending code (None: no code pending,
    because none was asked for, it was used, or it was refused too often); `user_id` is whose
    code it is; `expires_at` its end of validity; `attempts` the wrong tries made on it;
    `locked_until` the end of a cooldown (0: none); `requested` the times codes were sent,
    within the caller's rate window, oldest first."""

    email: str
    version: int
    user_id: str | None = None
    code_hash: bytes | None = None
    expires_at: float = 0.0
    attempts: int = 0
    locked_until: float = 0.0
    requested: tuple[float, ...] = ()

    @property
    def horizon(self) -> float:
        """After this time the record says nothing any more: `purge_codes` may drop it."""
        return max((self.expires_at, self.locked_until, *self.requested))


@dataclass(frozen=True, slots=True)
class DeviceSession:
    """A sign-in on one device. `ended_at` is None while the session is live; `end_reason`
    says why it ended (`signed_out`, `reuse`, `idle`, `admin`, `removed`...)."""

    id: str
    user_id: str
    device: str
    created_at: float
    last_seen: float
    ended_at: float | None = None
    end_reason: str | None = None

    @property
    def live(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class RefreshMatch:
    """The session a refresh hash belongs to. `current`: the hash is the session's current one;
    otherwise it was superseded, and `previous` says whether it is the one replaced by the
    last rotation (at `rotated_at`), so callers can forgive a race between two tabs."""

    session: DeviceSession
    current: bool
    previous: bool
    rotated_at: float | None


class AuthStore(Protocol):
    async def open(self) -> None:
        """Connect and create the schema (idempotent: tables and indexes that exist stay)."""
        ...

    async def close(self) -> None: ...

    # -- one-time codes ----------------------------------------------------------------

    async def get_code(self, email: str) -> CodeState | None:
        """The record of `email` (exactly as given: callers normalise), or None."""
        ...

    async def swap_code(self, state: CodeState) -> bool:
        """Store `state` if the stored record of `state.email` has version `state.version - 1`
        (no record counts as version 0); return whether it was stored. A False means another
        writer came first: read again and decide again."""
        ...

    async def purge_codes(self, before: float) -> int:
        """Drop the records whose `horizon` is before `before`; return how many."""
        ...

    # -- device sessions ----------------------------------------------------------------

    async def create_session(self, session: DeviceSession, refresh_hash: bytes) -> None:
        """Store a new live session with its first refresh hash, and record the user's first
        sign-in at `session.created_at` unless one is recorded. Session ids and refresh hashes
        are unique (a duplicate is a `ValueError`: the caller's random source failed)."""
        ...

    async def get_session(self, session_id: str) -> DeviceSession | None: ...

    async def find_refresh(self, refresh_hash: bytes) -> RefreshMatch | None:
        """The session whose current or superseded (remembered) refresh hash this is, or None."""
        ...

    async def rotate_refresh(self, session_id: str, expected: bytes, new: bytes, at: float) -> bool:
        """Atomically, if the session is live and its current hash is `expected`: make `new`
        current, remember `expected` as superseded (the previous one, rotated at `at`), and set
        `last_seen` to `at`. Return whether it did."""
        ...

    async def touch_session(self, session_id: str, at: float) -> bool:
        """Move a live session's `last_seen` forward to `at`; return whether it is live."""
        ...

    async def touch_sessions(self, session_ids: Iterable[str], at: float) -> set[str]:
        """`touch_session` for each of `session_ids`, in one write (the connects of a storm
        each bring one); return those that are live."""
        ...

    async def end_session(self, session_id: str, at: float, reason: str) -> bool:
        """End a live session (`ended_at`, `end_reason`); return whether it was live."""
        ...

    async def end_user_sessions(self, user_id: str, at: float, reason: str) -> list[str]:
        """End every live session of a user; return their ids."""
        ...

    async def list_sessions(self, user_id: str, *, include_ended: bool = False) -> list[DeviceSession]:
        """A user's sessions, newest first; live ones only unless `include_ended`."""
        ...

    async def purge_sessions(self, ended_before: float) -> int:
        """Drop the sessions that ended before `ended_before` and their hashes; return how many."""
        ...

    # -- sign-ins and invitations -----------------------------------------------------------

    async def first_sign_ins(self, user_ids: Iterable[str]) -> dict[str, float]:
        """For those of `user_ids` who have ever signed in: the time of their first sign-in.
        The others ("never signed in") are absent."""
        ...

    async def with_live_sessions(self, user_ids: Iterable[str]) -> set[str]:
        """Those of `user_ids` with at least one live device session (the director's board:
        who can be reached on a device)."""
        ...

    async def record_invitation(self, user_id: str, sent_at: float) -> None:
        """Remember that an invitation e-mail was sent to `user_id` at `sent_at`."""
        ...

    async def invitations(self, user_ids: Iterable[str]) -> dict[str, list[float]]:
        """For those of `user_ids` ever invited: the times of their invitations, oldest first."""
        ...

    # -- erasure ------------------------------------------------------------------------

    async def forget_user(self, user_id: str) -> None:
        """Erase everything kept about a user (GDPR): sessions and their hashes, the first
        sign-in, invitations, and the code records whose `user_id` is theirs."""
        ...
