"""Tokens of the school's identity provider (OpenID Connect), issue 11.

A school that has its own identity provider (an ENT, an academy's SSO) lets its people sign
in with it: the provider's ID token (a JWT signed RS256 or ES256 with one of the keys it
publishes as a JWKS) is accepted at `connect` and exchanged for a device session
(`POST /api/v1/auth/oidc`). The rules:

- `iss` must be the configured issuer and `aud` the configured audience (our client id);
  `exp` is required and checked with 30 s of leeway, `nbf` and `iat` when present;
- only RS256 and ES256, and the key is the provider's key named by the token's `kid`, of the
  same algorithm: a token cannot pick how it is checked, nor bring its own key (`jwk`, `jku`
  and `x5u` headers are ignored: keys come from the configured JWKS only);
- the keys are fetched with PyJWT's `PyJWKClient` in a worker thread (the event loop never
  waits on the network), kept 5 minutes, and fetched again at once for a `kid` we do not
  know (the provider rotated its keys) — at most once every `refetch` seconds, so tokens
  with made-up `kid`s cannot make us hammer the provider;
- without a configured JWKS URL, it is read from the issuer's
  `/.well-known/openid-configuration` (`jwks_uri`), whose `issuer` must be the configured one;
- the person is the one whose directory e-mail is the token's `claim` (default `email`),
  compared case-insensitively; the claim `email_verified: false` is refused.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

import jwt
import structlog
from jwt import PyJWK, PyJWKClient

from auth.tokens import MAX_TOKEN_CHARS, TokenError
from school.errors import Unavailable

log = structlog.get_logger("liaison.oidc")

ALGORITHMS: Final = ("RS256", "ES256")
LEEWAY: Final = 30
KEYS_LIFESPAN: Final = 300.0
FETCH_TIMEOUT: Final = 5.0
MAX_DOCUMENT_BYTES: Final = 256 * 1024
LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


class Identity(NamedTuple):
    """What a valid provider token says: the claim that names the person, and its expiry."""

    claim: str
    expires_at: float


def provider_algorithm(token: object) -> str | None:
    """The token's `alg` when it is one of the provider's (RS256, ES256); None otherwise (ours:
    HS256, or not a token at all)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        return None
    return alg if alg in ALGORITHMS else None


def _refused(message: str, reason: str) -> TokenError:
    return TokenError(f"{message}: sign in again", reason=reason)


def _fetch_json(url: str) -> dict[str, Any]:
    """GET a small JSON object (in a worker thread)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError("the document is too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the document is not a JSON object")
    return document


def _secure_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http"
                                                                 and parts.hostname in LOOPBACK))


class ProviderTokens:
    """Verify the identity provider's tokens. `clock` (monotonic seconds) paces the refetches."""

    def __init__(self, issuer: str, audience: str, jwks_url: str | None, claim: str = "email", *,
                 refetch: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.issuer = issuer
        self.audience = audience
        self.claim = claim
        self._jwks_url = jwks_url
        self._refetch = refetch
        self._clock = clock
        self._client: PyJWKClient | None = None
        self._forced_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, token: object) -> Identity:
        """The identity of a valid provider token, or `TokenError` (`Unavailable` when the
        provider's keys cannot be fetched)."""
        alg = provider_algorithm(token)
        if alg is None:
            raise _refused("token is not signed by the identity provider (RS256 or ES256)", "algorithm")
        assert isinstance(token, str)
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if "crit" in header or not isinstance(kid, str) or not kid:
            raise _refused("token is malformed (kid)", "malformed")
        key = await self._key(kid)
        if key.algorithm_name != alg:
            raise _refused("token is not signed with its key's algorithm", "algorithm")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY, options={"require": ["exp", "iss", "aud"]})
        except jwt.InvalidSignatureError:
            raise _refused("token signature is invalid", "signature") from None
        except jwt.InvalidAudienceError:
            raise _refused("token is for another audience (aud)", "audience") from None
        except jwt.InvalidIssuerError:
            raise _refused("token comes from another issuer (iss)", "issuer") from None
        except jwt.ExpiredSignatureError:
            raise _refused("token expired", "expired") from None
        except jwt.ImmatureSignatureError:
            raise _refused("token is not valid yet", "not_yet_valid") from None
        except jwt.InvalidTokenError:
            raise _refused("token is invalid", "invalid") from None
        value = claims.get(self.claim)
        if not isinstance(value, str) or not value.strip() or claims.get("email_verified") is False:
            raise _refused(f"token has no usable {self.claim!r} claim", "subject")
        return Identity(value.strip(), float(claims["exp"]))

    async def _key(self, kid: str) -> PyJWK:
        async with self._lock:  # one fetch at a time in this process
            client = await self._jwks_client()
            try:
                found = PyJWKClient.match_kid(await asyncio.to_thread(client.get_signing_keys), kid)
                now = self._clock()
                if found is None and (self._forced_at is None or now - self._forced_at >= self._refetch):
                    self._forced_at = now  # a rotation: look again, once per `refetch` seconds
                    found = PyJWKClient.match_kid(await asyncio.to_thread(client.get_signing_keys, True), kid)
                    log.info("oidc_keys_refetched", known=found is not None)
            except jwt.PyJWKClientConnectionError as exc:
                log.warning("oidc_keys_unreachable", error=str(exc)[:200])
                raise Unavailable("the identity provider's keys cannot be fetched: try again shortly") from None
            except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
                log.warning("oidc_keys_unusable", error=str(exc)[:200])
                raise Unavailable("the identity provider publishes no usable keys: try again shortly") from None
        if found is None:
            raise _refused("token is signed with a key the identity provider does not publish", "signature")
        return found

    async def _jwks_client(self) -> PyJWKClient:
        if self._client is None:
            url = self._jwks_url or await self._discover()
            self._client = PyJWKClient(url, cache_jwk_set=True, lifespan=KEYS_LIFESPAN, timeout=FETCH_TIMEOUT)
        return self._client

    async def _discover(self) -> str:
        where = f"{self.issuer}/.well-known/openid-configuration"
        try:
            document = await asyncio.to_thread(_fetch_json, where)
        except (OSError, ValueError) as exc:
            log.warning("oidc_discovery_failed", error=str(exc)[:200])
            raise Unavailable("the identity provider cannot be reached: try again shortly") from None
        jwks_uri = document.get("jwks_uri")
        if document.get("issuer") != self.issuer or not _secure_url(jwks_uri):
            log.error("oidc_discovery_mismatch", issuer=str(document.get("issuer"))[:200])
            raise Unavailable("the identity provider's configuration does not match LIAISON_OIDC_ISSUER")
        assert isinstance(jwks_uri, str)
        return jwks_uri
