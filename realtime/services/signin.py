"""Sign-in, as both transports need it (issue 11): e-mailed codes, device sessions, the identity
provider's tokens, and who a token at `connect` belongs to.

The rules are in auth/codes.py and auth/sessions.py; this service joins them to the directory
(who owns an address), the mailer, and the gateways (`SessionEnds`). It answers in the error
tree (`school.errors`), so the HTTP API maps its refusals in its one place.

Asking for a code never tells anything: the request is handed to a background task at once
(looking the address up, the code's compare-and-set and the SMTP conversation all happen
after the answer), so the answer and its timing are the same for a parent's address, an
unknown one, one over its limit or one cooling down. At most `MAX_PENDING` requests wait at
once in a process; beyond, new ones are dropped (and logged): a flood must not grow memory.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import structlog

from auth import tokens
from auth.codes import Checked, CodePolicy, Requested, SignInCodes
from auth.sessions import Refresh, access_token
from notify.email import Mailer, MailError, code_email
from persistence.auth_store import AuthStore, DeviceSession
from realtime.config import Settings
from realtime.engine.background import Background
from realtime.engine.reads import LiveSessions
from realtime.services.oidc import ProviderTokens, provider_algorithm
from realtime.services.session_ends import SessionEnds
from school.directory import Directory, Person
from school.errors import BadRequest, Conflict, RateLimited, Unauthorized
from school.importer import normalize_email

log = structlog.get_logger("liaison.signin")

MAX_PENDING: Final = 200  # code requests waiting for their background task, per process
CODE_KEY_LABEL: Final = b"liaison sign-in codes"
GONE = "this account is not (or no longer) known"


def code_key(jwt_secret: bytes) -> bytes:
    """The HMAC key of sign-in codes, derived from the JWT secret (HKDF-like: one secret to
    manage, and a key that signs nothing else)."""
    return hmac.new(jwt_secret, CODE_KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session opened or refreshed: what the device is given."""

    person: Person
    session: DeviceSession
    access_token: str = field(repr=False)
    expires_in: int
    credential: str = field(repr=False)  # the refresh credential


def person_by_email(directory: Directory, email: str) -> Person | None:
    """The person whose directory e-mail is `email` (case-insensitively), or None. Guardians'
    addresses are unique (the directory's rule); a staff member sharing one is found first."""
    address = normalize_email(email)
    if address is None:
        return None
    found = [p for p in directory.people.values() if p.email is not None and p.email.lower() == address]
    found.sort(key=lambda p: (p.role.is_staff, p.id))
    return found[0] if found else None


class SignIn:
    def __init__(self, settings: Settings, directory: Directory, store: AuthStore, mailer: Mailer | None,
                 ends: SessionEnds, background: Background, clock: Callable[[], float],
                 provider: ProviderTokens | None = None) -> None:
        s = settings.signin
        self.settings = settings
        self.directory = directory
        self.store = store
        self.mailer = mailer
        self.ends = ends
        self.background = background
        self.clock = clock
        self.provider = provider
        self.codes = SignInCodes(store, code_key(settings.jwt_secret.bytes()), clock=clock,
                                 policy=CodePolicy(ttl=s.code_ttl))
        self.sessions = ends.sessions
        # the connects of a moment check their device sessions in one store write (issue 16)
        self.live_sessions = LiveSessions(store.touch_sessions)
        self.pending = 0
        self._warned_no_mail = False

    # -- codes ------------------------------------------------------------------------------

    def request_code(self, email: str) -> None:
        """Ask for a code for `email`; returns at once (see the module's docstring)."""
        if self.pending >= MAX_PENDING:
            log.warning("code_request_dropped", pending=self.pending)
            return
        self.pending += 1
        self.background.spawn(self._send_code(email))

    async def _send_code(self, email: str) -> None:
        try:
            person = person_by_email(self.directory, email)
            result = await self.codes.request(email, person.id if person else None)
            log.info("code_requested", outcome=result.outcome.value, user=result.user_id)
            if result.outcome is not Requested.SENT or person is None or result.code is None:
                return
            if self.mailer is None:
                if not self._warned_no_mail:
                    self._warned_no_mail = True
                    log.warning("email_not_configured", hint="set LIAISON_SMTP_URL and LIAISON_SMTP_FROM: "
                                "sign-in codes cannot be sent")
                return
            school = self.directory.schools.get(person.school_id)
            minutes = max(1, math.ceil(self.codes.policy.ttl / 60))
            mail = code_email(result.email, school.name if school else "Liaison", result.code,
                              valid_minutes=minutes)
            try:
                await self.mailer.send(mail)
                log.info("code_sent", user=person.id)
            except MailError as exc:
                log.warning("code_not_sent", user=person.id, transient=exc.transient, error=str(exc)[:200])
        except Exception as exc:  # a background task: say it and carry on
            log.warning("code_request_failed", error=type(exc).__name__)
        finally:
            self.pending -= 1

    async def verify(self, email: str, code: str, device: object) -> SignedIn:
        """A typed code: a new session, or the refusal (wrong 400, expired or none 401, locked 429)."""
        check = await self.codes.verify(email, code)
        match check.outcome:
            case Checked.VERIFIED:
                person = self.directory.person(check.user_id or "")
                if person is None:
                    raise Unauthorized(GONE)
                return await self.start(person, device, "code")
            case Checked.WRONG:
                left = check.attempts_left
                raise BadRequest(f"the code is wrong: {left} {'try' if left == 1 else 'tries'} left",
                                 attempts_left=left)
            case Checked.LOCKED:
                retry = check.retry_after or 1.0
                raise RateLimited(f"too many wrong codes: ask for a new code in {math.ceil(retry / 60)} "
                                  "minutes", retry)
            case Checked.EXPIRED:
                raise Unauthorized("the code has expired: ask for a new one")
        raise Unauthorized("no code is waiting for this address: ask for one")

    # -- sessions ---------------------------------------------------------------------------

    async def start(self, person: Person, device: object, how: str) -> SignedIn:
        started = await self.sessions.start(person.id, device)
        log.info("signed_in", user=person.id, session=started.session.id, how=how)
        return self._signed_in(person, started.session, started.credential)

    def _signed_in(self, person: Person, session: DeviceSession, credential: str) -> SignedIn:
        ttl = self.settings.signin.access_ttl
        token = access_token(self.settings.jwt_secret.bytes(), session, self.clock(), ttl=ttl)
        return SignedIn(person, session, token, ttl, credential)

    async def refresh(self, credential: object) -> SignedIn:
        result = await self.sessions.refresh(credential)
        session = result.session
        match result.outcome:
            case Refresh.ROTATED:
                assert session is not None and result.credential is not None
                person = self.directory.person(session.user_id)
                if person is None:
                    await self.ends.end_all(session.user_id, "removed")
                    raise Unauthorized(GONE)
                return self._signed_in(person, session, result.credential)
            case Refresh.SUPERSEDED:
                raise Conflict("this refresh credential was just replaced (another tab refreshed): "
                               "retry with the current one")
            case Refresh.REUSED:
                assert session is not None
                log.warning("refresh_reused", user=session.user_id, session=session.id)
                await self.ends.announce([session.id], "reuse")
                raise Unauthorized("this refresh credential was used already: the session is ended, "
                                   "sign in again")
            case Refresh.IDLE:
                assert session is not None
                await self.ends.announce([session.id], "idle")
                raise Unauthorized("this session was unused for too long: sign in again")
            case Refresh.ENDED:
                raise Unauthorized("this session has ended: sign in again")
        raise Unauthorized("unknown refresh credential: sign in again")

    async def sign_out(self, credential: object) -> bool:
        session = await self.sessions.sign_out(credential)
        if session is None:
            return False
        await self.ends.announce([session.id], "signed_out")
        return True

    # -- the identity provider ----------------------------------------------------------------

    async def provider_person(self, token: object) -> tuple[Person, float]:
        """The person of a valid identity-provider token, and the token's expiry."""
        if self.provider is None:
            raise Unauthorized("this server does not accept identity-provider tokens (LIAISON_OIDC_ISSUER)")
        identity = await self.provider.verify(token)
        person = person_by_email(self.directory, identity.claim)
        if person is None:
            log.info("oidc_unknown_person")
            raise Unauthorized("nobody in the school's directory has this identity's e-mail address")
        return person, identity.expires_at

    async def oidc_sign_in(self, token: object, device: object) -> SignedIn:
        person, _ = await self.provider_person(token)
        return await self.start(person, device, "oidc")

    # -- connect ------------------------------------------------------------------------------

    async def identify(self, token: object, bind: Callable[[str], None]) -> tuple[str, float]:
        """Who a token at `connect` is (user id, expiry): one of ours (HS256; with a `sid`, only
        while that session is live, whose `last_seen` moves) or the identity provider's.
        `bind(sid)` is called before the session is checked, so that an end announced meanwhile
        finds the connection."""
        if self.provider is not None and provider_algorithm(token) is not None:
            person, expires = await self.provider_person(token)
            return person.id, expires
        secret = self.settings.jwt_secret.bytes()
        claims = tokens.verify_access(secret, token, self.clock())
        if claims.session_id is not None:
            bind(claims.session_id)
            if not await self.live_sessions.touch(claims.session_id, self.clock()):
                raise tokens.TokenError("this session has ended: sign in again", reason="session")
        return claims.user_id, claims.expires_at
