"""HS256 JSON Web Tokens: issued by the CLI and the demo, verified on `connect`.

Only HS256 is accepted; `alg: none` and every other algorithm are refused, so a
token cannot choose how it is checked. `sub` is the user id; `exp` is required.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

MIN_SECRET_BYTES = 32
_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """The token is malformed, badly signed or expired (the message says which)."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise TokenError("token is not valid base64url") from exc


def _sign(secret: bytes, signing_input: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def _segment(obj: dict[str, Any]) -> str:
    return _b64encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


def issue(secret: bytes, user_id: str, ttl_seconds: int, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"sub": user_id, "iat": issued, "exp": issued + ttl_seconds}
    signing_input = f"{_segment(_HEADER)}.{_segment(claims)}"
    signature = _sign(secret, signing_input.encode("ascii"))
    return f"{signing_input}.{_b64encode(signature)}"


def _json_segment(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(text))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError(f"token {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenError(f"token {what} is not an object")
    return value


def verify(secret: bytes, token: object, now: float | None = None, leeway: int = 30) -> str:
    """Return the user id (`sub`) of a valid token, or raise `TokenError`."""
    return verify_claims(secret, token, now, leeway)[0]


def verify_claims(secret: bytes, token: object, now: float | None = None, leeway: int = 30) -> tuple[str, float]:
    """Return the user id (`sub`) and the expiry (`exp`, seconds since the epoch) of a valid token."""
    if not isinstance(token, str) or len(token) > 4096:
        raise TokenError("token must be a string of at most 4096 characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token must have three parts")
    header = _json_segment(parts[0], "header")
    if header.get("alg") != "HS256":
        raise TokenError("token algorithm must be HS256")
    try:
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    except UnicodeEncodeError:
        raise TokenError("token is not valid base64url") from None
    expected = _sign(secret, signing_input)
    if not hmac.compare_digest(expected, _b64decode(parts[2])):
        raise TokenError("token signature does not match")
    claims = _json_segment(parts[1], "claims")
    exp, sub = claims.get("exp"), claims.get("sub")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenError("token has no expiry (exp)")
    if exp + leeway < (time.time() if now is None else now):
        raise TokenError("token has expired")
    if not isinstance(sub, str) or not sub:
        raise TokenError("token has no subject (sub)")
    return sub, float(exp)
