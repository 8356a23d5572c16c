"""One-time sign-in codes sent by e-mail (issue 11): the rules, over an `AuthStore` and a clock.

A guardian or a member of staff whose e-mail address is in the directory asks for a code;
we e-mail six digits; they type them in and are signed in. The rules:

- a code is 6 digits from `secrets`, valid `ttl` (10 minutes), used once;
- a new request replaces the previous code (only the last e-mail works);
- at most `max_requests` codes per address per `request_window` (3 per 10 minutes);
- at most `max_attempts` wrong tries (5) on a code; the last one ends the code and starts a
  `cooldown` (15 minutes) during which the address gets no code and no try is checked;
- only a keyed hash of a code is stored (HMAC-SHA256 under a server key, over the address
  and the code, so a hash is worth nothing for another address or without the key), and a
  typed code is compared with `hmac.compare_digest`.

The HTTP layer answers every request the same way (202: no account enumeration), so
`request` reports what happened, for the logs and for the e-mail to send, and never raises
for an unknown address. Each step is a compare-and-set of the address's record
(`AuthStore.swap_code`): two gateways verifying one code at once cannot both sign in, and
concurrent wrong tries are all counted.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from persistence.auth_store import AuthStore, CodeState
from persistence.store import StoreUnavailable
from school.importer import normalize_email

Clock = Callable[[], float]  # seconds since the epoch

CODE_DIGITS: Final = 6
MIN_KEY_BYTES: Final = 32
_SWAP_ATTEMPTS: Final = 5  # compare-and-set rounds lost to other writers before giving up
_TYPED = re.compile(r"[\s.\-]")  # what people type between digits: "123 456", "123-456"


@dataclass(frozen=True, slots=True)
class CodePolicy:
    ttl: float = 600.0
    max_attempts: int = 5
    cooldown: float = 900.0
    max_requests: int = 3
    request_window: float = 600.0


class Requested(enum.Enum):
    SENT = "sent"  # a new code: e-mail it
    UNKNOWN_ADDRESS = "unknown_address"  # not an address, or nobody's: nothing stored, nothing sent
    RATE_LIMITED = "rate_limited"  # too many codes for this address lately
    COOLING_DOWN = "cooling_down"  # too many wrong tries lately


class Checked(enum.Enum):
    VERIFIED = "verified"
    WRONG = "wrong"  # `attempts_left` more tries on this code
    LOCKED = "locked"  # no more tries until `retry_after` seconds have passed
    EXPIRED = "expired"
    NO_CODE = "no_code"  # none asked for this address, or already used or refused


@dataclass(frozen=True, slots=True)
class CodeRequest:
    outcome: Requested
    email: str  # the normalised address (as typed when it is not one)
    user_id: str | None = None
    code: str | None = field(default=None, repr=False)  # SENT only: for the e-mail, never for logs
    expires_at: float | None = None
    retry_after: float | None = None  # seconds, for RATE_LIMITED and COOLING_DOWN


@dataclass(frozen=True, slots=True)
class CodeCheck:
    outcome: Checked
    email: str
    user_id: str | None = None  # VERIFIED only: who signs in
    attempts_left: int = 0
    retry_after: float | None = None  # seconds, for LOCKED


class SignInCodes:
    """`request` and `verify` one-time codes. `key` is the server's HMAC key (at least 32 bytes);
    `clock` gives seconds since the epoch."""

    def __init__(self, store: AuthStore, key: bytes, *, clock: Clock,
                 policy: CodePolicy = CodePolicy()) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the code key must be bytes, at least {MIN_KEY_BYTES} of them")
        self._store = store
        self._key = key
        self._clock = clock
        self.policy = policy

    def _hash(self, email: str, code: str) -> bytes:
        return hmac.new(self._key, f"{email}\n{code}".encode(), hashlib.sha256).digest()

    async def request(self, email: str, user_id: str | None) -> CodeRequest:
        """Make a new code for `email`, whose owner in the directory is `user_id` (None: nobody's;
        the caller looks the address up). The code replaces any previous one."""
        address = normalize_email(email) if isinstance(email, str) else None
        if address is None or user_id is None:
            return CodeRequest(Requested.UNKNOWN_ADDRESS, address or str(email).strip().lower()[:254])
        p = self.policy
        for _ in range(_SWAP_ATTEMPTS):
            now = self._clock()
            state = await self._store.get_code(address) or CodeState(address, 0)
            if state.locked_until > now:
                return CodeRequest(Requested.COOLING_DOWN, address, user_id, retry_after=state.locked_until - now)
            recent = tuple(t for t in state.requested if t > now - p.request_window)
            if len(recent) >= p.max_requests:
                retry = recent[-p.max_requests] + p.request_window - now
                return CodeRequest(Requested.RATE_LIMITED, address, user_id, retry_after=retry)
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            new = CodeState(address, state.version + 1, user_id, self._hash(address, code), now + p.ttl, 0,
                            state.locked_until, (*recent, now))
            if await self._store.swap_code(new):
                return CodeRequest(Requested.SENT, address, user_id, code, new.expires_at)
        # Others keep writing this address's record at this very moment: a flood, not a person.
        return CodeRequest(Requested.RATE_LIMITED, address, user_id, retry_after=1.0)

    async def verify(self, email: str, code: str) -> CodeCheck:
        """Check a typed code. A right one is used up (VERIFIED once); a wrong one counts."""
        address = normalize_email(email) if isinstance(email, str) else None
        if address is None:
            return CodeCheck(Checked.NO_CODE, str(email).strip().lower()[:254])
        typed = _TYPED.sub("", code) if isinstance(code, str) else ""
        well_formed = len(typed) == CODE_DIGITS and typed.isascii() and typed.isdigit()
        p = self.policy
        for _ in range(_SWAP_ATTEMPTS):
            now = self._clock()
            state = await self._store.get_code(address)
            if state is not None and state.locked_until > now:
                return CodeCheck(Checked.LOCKED, address, retry_after=state.locked_until - now)
            if state is None or state.code_hash is None:
                return CodeCheck(Checked.NO_CODE, address)
            if now >= state.expires_at:
                return CodeCheck(Checked.EXPIRED, address)
            # compare_digest even for a malformed code: the same work whatever was typed
            right = hmac.compare_digest(self._hash(address, typed), state.code_hash) and well_formed
            attempts = state.attempts + (0 if right else 1)
            result: CodeCheck
            if right:
                new = replace(state, version=state.version + 1, code_hash=None)
                result = CodeCheck(Checked.VERIFIED, address, state.user_id)
            elif attempts >= p.max_attempts:
                new = replace(state, version=state.version + 1, code_hash=None, attempts=attempts,
                              locked_until=now + p.cooldown)
                result = CodeCheck(Checked.LOCKED, address, retry_after=p.cooldown)
            else:
                new = replace(state, version=state.version + 1, attempts=attempts)
                result = CodeCheck(Checked.WRONG, address, attempts_left=p.max_attempts - attempts)
            if await self._store.swap_code(new):
                return result
        raise StoreUnavailable(f"too many concurrent checks of the code of one address ({_SWAP_ATTEMPTS})")

    async def purge(self) -> int:
        """Drop the records that no longer say anything: code expired, cooldown over, requests out of
        the window (a record's `horizon` is its latest time; a request counts `request_window` after)."""
        return await self._store.purge_codes(self._clock() - self.policy.request_window)
