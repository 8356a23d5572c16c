"""HS256 JSON Web Tokens: issued by the CLI and the demo, verified on `connect` and by the HTTP API.

Signing and the signature check are PyJWT's, a maintained library (JWKS keys of a school's
identity provider and key rotation will use it too). A token exactly as `issue` makes it (its
header, its claims) is checked here directly, at a tenth of PyJWT's cost (a storm verifies
thousands at once); whatever that check does not pass goes through PyJWT, which then decides.
This module holds our rules on top:

- the token is the compact form in strict base64url: three non-empty segments of
  `A-Z a-z 0-9 - _`, no padding, no other character (PyJWT, depending on its version,
  tolerates `=` padding or decodes leniently; a token must have exactly one spelling);
- only HS256: `alg: none` and every other algorithm are refused, so a token cannot choose
  how it is checked; no critical header extension (`crit`) is understood, so none is accepted;
- `exp` is required; `nbf` and `iat`, when present, must not lie in the future; all three are
  finite numbers and are compared, with a leeway, to an injected clock (`now`), not to
  PyJWT's own;
- `sub`, the user id, is a non-empty string of at most 128 characters;
- `sid`, the device session a token was issued for (auth/sessions.py), is optional (tokens
  of the CLI and the demo have none); when present, a non-empty string of at most 128
  characters;
- `aud` and `iss` are checked when the caller configures them (a token without them, or with
  another value, is then refused); a token naming an audience is refused when none is
  configured (RFC 7519 §4.1.3).

Every refusal is a `TokenError`, an `Unauthorized`: transports answer `unauthorized` with its
message, which tells the user what to do. A misconfigured secret is a `ValueError`: the server's
fault, not the token's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from typing import Any, Final, NamedTuple, TypeGuard

import jwt

from school.errors import Unauthorized

MIN_SECRET_BYTES: Final = 32
ALGORITHM: Final = "HS256"
LEEWAY_SECONDS: Final = 30
MAX_TOKEN_CHARS: Final = 4096
MAX_SUBJECT_CHARS: Final = 128

_COMPACT: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class TokenError(Unauthorized):
    """The token is refused. The message, shown to the user, says why and what to do; `reason`
    names the rule for logs and tests: `malformed`, `algorithm`, `signature`, `expiry`, `expired`,
    `time`, `not_yet_valid`, `subject`, `session`, `audience`, `issuer` or `invalid`. Fatal by default: a
    session whose token is refused ends."""

    def __init__(self, message: str, *, reason: str = "invalid", fatal: bool = True) -> None:
        super().__init__(message, fatal=fatal)
        self.reason = reason


class Claims(NamedTuple):
    """What a valid token says: whose it is, until when, and for which device session."""

    user_id: str
    expires_at: float
    session_id: str | None


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the signing secret must be bytes, at least {MIN_SECRET_BYTES} of them")


def _check_name(value: str | None, what: str) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"the {what} must be a non-empty string or None")


def _valid_subject(sub: object) -> TypeGuard[str]:
    return isinstance(sub, str) and 0 < len(sub) <= MAX_SUBJECT_CHARS


def issue(secret: bytes, user_id: str, ttl_seconds: int, now: float | None = None, *,
          audience: str | None = None, issuer: str | None = None, session_id: str | None = None) -> str:
    """A token for `user_id`, issued at `now` (default: the wall clock) and valid `ttl_seconds`;
    with `aud` and `iss` when given, and the device session as `sid` when `session_id` is given."""
    _check_secret(secret)
    _check_name(audience, "audience")
    _check_name(issuer, "issuer")
    if not _valid_subject(user_id):
        raise ValueError(f"the user id must be a string of 1 to {MAX_SUBJECT_CHARS} characters")
    if session_id is not None and not _valid_subject(session_id):
        raise ValueError(f"the session id must be a string of 1 to {MAX_SUBJECT_CHARS} characters")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user_id, "iat": issued, "exp": issued + int(ttl_seconds)}
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    if session_id is not None:
        claims["sid"] = session_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: bytes, token: object, now: float | None = None, leeway: float = LEEWAY_SECONDS, *,
           audience: str | None = None, issuer: str | None = None) -> str:
    """Return the user id (`sub`) of a valid token, or raise `TokenError`."""
    return verify_claims(secret, token, now, leeway, audience=audience, issuer=issuer)[0]


def verify_claims(secret: bytes, token: object, now: float | None = None, leeway: float = LEEWAY_SECONDS, *,
                  audience: str | None = None, issuer: str | None = None) -> tuple[str, float]:
    """Return the user id (`sub`) and the expiry (`exp`, seconds since the epoch) of a valid token,
    or raise `TokenError`. See `verify_access` for the arguments."""
    claims = verify_access(secret, token, now, leeway, audience=audience, issuer=issuer)
    return claims.user_id, claims.expires_at


def verify_access(secret: bytes, token: object, now: float | None = None, leeway: float = LEEWAY_SECONDS, *,
                  audience: str | None = None, issuer: str | None = None) -> Claims:
    """The `Claims` of a valid token (`sid` included: None when the token has none), or raise
    `TokenError`. `now` is the clock (default: the wall clock); `leeway` (seconds) is the
    clock skew forgiven on `exp`, `nbf` and `iat`; `audience` and `issuer`, when given, must be the
    token's `aud` (or one of them) and `iss`."""
    _check_secret(secret)
    _check_name(audience, "audience")
    _check_name(issuer, "issuer")
    if not math.isfinite(leeway) or leeway < 0:
        raise ValueError("the leeway must be a finite number of seconds, at least 0")
    claims = _verified_claims(secret, token, audience, issuer)
    exp = _time_claim(claims, "exp")
    if exp is None:
        raise TokenError("token has no valid expiry (exp): sign in again", reason="expiry")
    not_before = [t for t in (_time_claim(claims, "nbf"), _time_claim(claims, "iat")) if t is not None]
    sub = claims.get("sub")
    if not _valid_subject(sub):
        raise TokenError("token has no valid subject (sub): sign in again", reason="subject")
    clock = time.time() if now is None else now
    if exp + leeway < clock:
        raise TokenError("token expired: sign in again", reason="expired")
    if any(t > clock + leeway for t in not_before):
        raise TokenError("token is not valid yet: sign in again", reason="not_yet_valid")
    sid = claims.get("sid")
    if "sid" in claims and not _valid_subject(sid):
        raise TokenError("token has an invalid session (sid): sign in again", reason="session")
    return Claims(sub, exp, sid)


# The header every token of ours has (PyJWT's spelling of {"alg":"HS256","typ":"JWT"}), and the
# claims `issue` writes (and `nbf`): a token with exactly that header and no other claim is
# checked by `_ours` without PyJWT's general path (parsing twice, preparing the key each time:
# ~95 us a connect, a tenth of a storm's CPU); anything else goes through PyJWT.
_OUR_HEADER: Final = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
_OUR_CLAIMS: Final = frozenset({"sub", "iat", "exp", "sid", "nbf"})


def _ours(secret: bytes, token: str) -> dict[str, Any] | None:
    """The claims of a token `issue` made, signed with `secret`, without aud or iss; None when
    the token is anything else (PyJWT then decides, with its own errors). What passes here is
    what PyJWT would pass with the same arguments: the same HMAC, compared in constant time
    with the canonical base64url of the signature (PyJWT's decoding accepts no less), and
    claims that PyJWT does not check beyond being a JSON object."""
    header, payload, signature = token.split(".")
    if header != _OUR_HEADER:
        return None
    mac = hmac.new(secret, f"{header}.{payload}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii"), signature):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict) or not _OUR_CLAIMS.issuperset(claims):
        return None
    return claims


def _verified_claims(secret: bytes, token: object, audience: str | None, issuer: str | None) -> dict[str, Any]:
    """The claims of a well-formed HS256 token whose signature, `aud` and `iss` are right."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"token must be a string of at most {MAX_TOKEN_CHARS} characters: sign in again",
                         reason="malformed")
    if _COMPACT.fullmatch(token) is None:
        raise _malformed()
    if audience is None and issuer is None:
        fast = _ours(secret, token)
        if fast is not None:
            return fast
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise _malformed() from None
    if "crit" in header:
        raise _malformed()
    try:
        return jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=audience, issuer=issuer,
            # The time claims are checked by the caller against its clock; `sub` by our own rule.
            options={"verify_signature": True, "verify_exp": False, "verify_nbf": False,
                     "verify_iat": False, "verify_aud": True, "verify_iss": True, "verify_sub": False,
                     "require": []},
        )
    except jwt.InvalidAlgorithmError:
        raise TokenError(f"token is not signed with {ALGORITHM}: sign in again", reason="algorithm") from None
    except jwt.InvalidSignatureError:
        raise TokenError("token signature is invalid: sign in again", reason="signature") from None
    except jwt.InvalidAudienceError:
        raise _audience_error() from None
    except jwt.InvalidIssuerError:
        raise _issuer_error() from None
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim == "aud":
            raise _audience_error() from None
        if exc.claim == "iss":
            raise _issuer_error() from None
        raise TokenError("token is invalid: sign in again") from None
    except jwt.DecodeError:
        raise _malformed() from None
    except jwt.InvalidTokenError:
        raise TokenError("token is invalid: sign in again") from None


def _malformed() -> TokenError:
    return TokenError("token is malformed: sign in again", reason="malformed")


def _audience_error() -> TokenError:
    return TokenError("token is for another audience (aud): sign in again", reason="audience")


def _issuer_error() -> TokenError:
    return TokenError("token comes from another issuer (iss): sign in again", reason="issuer")


def _time_claim(claims: dict[str, Any], name: str) -> float | None:
    """A time claim as seconds since the epoch: None when absent, `TokenError` unless a finite number."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if math.isfinite(seconds):
            return seconds
    if name == "exp":
        raise TokenError("token has no valid expiry (exp): sign in again", reason="expiry")
    raise TokenError(f"token has an invalid time ({name}): sign in again", reason="time")
