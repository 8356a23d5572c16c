"""Device sessions (issue 11): a sign-in that lasts, over an `AuthStore` and a clock.

Each sign-in opens a session on one device (id, user, device name, created, last seen,
ended or not). The device holds two things:

- an access token: one of our JWTs (auth/tokens.py) with the session id as `sid`, valid
  `access_ttl` (15 minutes) and sent on every request and `connect`;
- a refresh credential: 32 random bytes in base64url, exchanged for a new access token and
  a new refresh credential (`refresh`). It rotates on every use; only its SHA-256 is stored
  (256 random bits need no key nor slow hash: nothing can be guessed from the hash).

Rotation is a compare-and-set of the session's current hash in the store, so of two gateways
presenting one credential at once exactly one gets the new pair. Presenting a credential
that was superseded is the sign of a stolen copy (the thief or the owner used it first):
the session ends, reason `reuse`, and `refresh` says so (`REUSED`) for the security log.
One case is forgiven: the credential replaced by the very last rotation, presented within
`reuse_grace` seconds of it (two tabs of one browser refreshing together, the loser's
request a moment late). That gets `SUPERSEDED`: nothing is issued, the session lives on,
and the client retries with the credential it now holds (the browser's cookie was
updated by the winner's answer). `reuse_grace=0` turns this off.

A session idle for longer than `idle_timeout` (120 days: a summer holiday is shorter) ends
at its next refresh, reason `idle`. A user lists their live sessions and ends any of them;
all of a person's sessions end at once on an administrator's request or when the person
leaves the directory (`end_all`). Access tokens already issued stay valid until they
expire unless the gateway checks `is_live(sid)`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from auth.tokens import issue
from persistence.auth_store import AuthStore, DeviceSession
from persistence.store import StoreUnavailable

Clock = Callable[[], float]  # seconds since the epoch

ACCESS_TTL: Final = 900  # seconds: an access token's life
CREDENTIAL_BYTES: Final = 32
MAX_DEVICE_CHARS: Final = 80
UNKNOWN_DEVICE: Final = "Appareil inconnu"
_CREDENTIAL = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes in unpadded base64url
_ROUNDS: Final = 3


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    access_ttl: int = ACCESS_TTL
    idle_timeout: float = 120 * 86_400.0
    reuse_grace: float = 10.0


class Refresh(enum.Enum):
    ROTATED = "rotated"  # a new refresh credential (and so a new access token)
    SUPERSEDED = "superseded"  # a race between two tabs, forgiven: retry with the current credential
    REUSED = "reused"  # a superseded credential: the session is ended (stolen-token detection)
    ENDED = "ended"  # the session had ended already (signed out, ended by its user or an admin)
    IDLE = "idle"  # unused for too long: the session is ended now
    INVALID = "invalid"  # not a credential we know


@dataclass(frozen=True, slots=True)
class Started:
    session: DeviceSession
    credential: str = field(repr=False)  # the refresh credential, to give to the device once


@dataclass(frozen=True, slots=True)
class Refreshed:
    outcome: Refresh
    session: DeviceSession | None = None  # as it is now (ended for REUSED, ENDED, IDLE)
    credential: str | None = field(default=None, repr=False)  # ROTATED only


def new_credential() -> str:
    """A fresh refresh credential: 32 random bytes, unpadded base64url (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(CREDENTIAL_BYTES)).rstrip(b"=").decode()


def credential_hash(credential: object) -> bytes | None:
    """What the store keeps of a credential; None when it cannot be one of ours."""
    if not isinstance(credential, str) or _CREDENTIAL.fullmatch(credential) is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(credential + "=")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != CREDENTIAL_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != credential:
        return None  # one spelling per credential (the last character has 2 unused bits)
    return hashlib.sha256(raw).digest()


def device_name(raw: object) -> str:
    """A device name fit for a list of sessions: printable, one line, at most 80 characters."""
    if not isinstance(raw, str):
        return UNKNOWN_DEVICE
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in raw)
    text = " ".join(text.split())[:MAX_DEVICE_CHARS].strip()
    return text or UNKNOWN_DEVICE


def access_token(secret: bytes, session: DeviceSession, now: float, *, ttl: int = ACCESS_TTL,
                 audience: str | None = None, issuer: str | None = None) -> str:
    """An access token of the session's user, carrying the session id as `sid`."""
    return issue(secret, session.user_id, ttl, now, audience=audience, issuer=issuer, session_id=session.id)


class DeviceSessions:
    def __init__(self, store: AuthStore, *, clock: Clock, policy: SessionPolicy = SessionPolicy()) -> None:
        self._store = store
        self._clock = clock
        self.policy = policy

    async def start(self, user_id: str, device: object) -> Started:
        """Open a session for a user who just proved who they are (a one-time code...)."""
        now = self._clock()
        session = DeviceSession(secrets.token_urlsafe(16), user_id, device_name(device), now, now)
        credential = new_credential()
        digest = credential_hash(credential)
        assert digest is not None
        await self._store.create_session(session, digest)
        return Started(session, credential)

    async def refresh(self, credential: object) -> Refreshed:
        """Exchange a refresh credential for a new one (see the module's docstring)."""
        digest = credential_hash(credential)
        if digest is None:
            return Refreshed(Refresh.INVALID)
        for _ in range(_ROUNDS):
            now = self._clock()
            match = await self._store.find_refresh(digest)
            if match is None:
                return Refreshed(Refresh.INVALID)
            session = match.session
            if not session.live:
                return Refreshed(Refresh.ENDED, session)
            if not match.current:
                grace = self.policy.reuse_grace
                if match.previous and match.rotated_at is not None and now - match.rotated_at < grace:
                    return Refreshed(Refresh.SUPERSEDED, session)
                return Refreshed(Refresh.REUSED, await self._end(session, now, "reuse"))
            if now - session.last_seen > self.policy.idle_timeout:
                return Refreshed(Refresh.IDLE, await self._end(session, now, "idle"))
            new = new_credential()
            new_digest = credential_hash(new)
            assert new_digest is not None
            if await self._store.rotate_refresh(session.id, digest, new_digest, now):
                return Refreshed(Refresh.ROTATED, replace(session, last_seen=max(session.last_seen, now)), new)
            # Another request rotated (or ended) the session first: look again.
        raise StoreUnavailable(f"refresh of one session kept losing to others ({_ROUNDS} rounds)")

    async def _end(self, session: DeviceSession, now: float, reason: str) -> DeviceSession:
        await self._store.end_session(session.id, now, reason)
        return await self._store.get_session(session.id) or replace(session, ended_at=now, end_reason=reason)

    async def sign_out(self, credential: object) -> DeviceSession | None:
        """End the session of a current refresh credential (the device signs itself out);
        None when the credential is not current."""
        digest = credential_hash(credential)
        match = None if digest is None else await self._store.find_refresh(digest)
        if match is None or not match.current or not match.session.live:
            return None
        return await self._end(match.session, self._clock(), "signed_out")

    async def of_user(self, user_id: str) -> list[DeviceSession]:
        """A user's live sessions, newest first."""
        return await self._store.list_sessions(user_id)

    async def end(self, user_id: str, session_id: str) -> bool:
        """A user ends one of their own sessions; False when it is not theirs or not live."""
        session = await self._store.get_session(session_id)
        if session is None or session.user_id != user_id:
            return False
        return await self._store.end_session(session_id, self._clock(), "ended_by_user")

    async def end_all(self, user_id: str, reason: str = "admin") -> list[str]:
        """End every live session of a person (an administrator's request: `admin`; removal from
        the directory: `removed`); return the ids ended."""
        return await self._store.end_user_sessions(user_id, self._clock(), reason)

    async def is_live(self, session_id: str) -> bool:
        """Whether a session (an access token's `sid`) has not ended."""
        session = await self._store.get_session(session_id)
        return session is not None and session.live

    async def purge(self, ended_for: float = 30 * 86_400.0) -> int:
        """Drop sessions ended more than `ended_for` seconds ago."""
        return await self._store.purge_sessions(self._clock() - ended_for)
