"""HS256 tokens: issue/verify, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from auth.tokens import TokenError, issue, verify

SECRET = b"k" * 32
NOW = 1_800_000_000


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(claims: dict[str, Any], header: dict[str, Any] | None = None, secret: bytes = SECRET) -> str:
    """A token signed with HMAC-SHA256 whatever its header says."""
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def test_round_trip() -> None:
    token = issue(SECRET, "t-martin", 3600, now=NOW)
    assert verify(SECRET, token, now=NOW + 10) == "t-martin"


def test_forged_helper_agrees_with_issue() -> None:
    assert verify(SECRET, forge({"sub": "p-adam", "exp": NOW + 60}), now=NOW) == "p-adam"


@pytest.mark.parametrize(("age", "valid"), [(59, True), (60, True), (90, True), (91, False), (10_000, False)])
def test_expiry_with_leeway(age: int, valid: bool) -> None:
    token = issue(SECRET, "t-martin", 60, now=NOW)
    if valid:
        assert verify(SECRET, token, now=NOW + age, leeway=30) == "t-martin"
    else:
        with pytest.raises(TokenError, match="expired"):
            verify(SECRET, token, now=NOW + age, leeway=30)


def test_wrong_secret() -> None:
    token = issue(SECRET, "t-martin", 60, now=NOW)
    with pytest.raises(TokenError, match="signature"):
        verify(b"x" * 32, token, now=NOW)


def test_tampered_payload() -> None:
    head, _, signature = issue(SECRET, "p-adam", 60, now=NOW).split(".")
    body = b64(json.dumps({"sub": "d-bernard", "exp": NOW + 60}).encode())
    with pytest.raises(TokenError, match="signature"):
        verify(SECRET, f"{head}.{body}.{signature}", now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256", None])
def test_other_algorithms_refused(alg: str | None) -> None:
    token = forge({"sub": "d-bernard", "exp": NOW + 60}, header={"alg": alg, "typ": "JWT"})
    with pytest.raises(TokenError, match="HS256"):
        verify(SECRET, token, now=NOW)


def test_alg_none_without_signature_refused() -> None:
    head = b64(json.dumps({"alg": "none"}).encode())
    body = b64(json.dumps({"sub": "d-bernard", "exp": NOW + 60}).encode())
    with pytest.raises(TokenError):
        verify(SECRET, f"{head}.{body}.", now=NOW)


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ({"exp": NOW + 60}, "subject"),
        ({"sub": "", "exp": NOW + 60}, "subject"),
        ({"sub": 42, "exp": NOW + 60}, "subject"),
        ({"sub": "p-adam"}, "expiry"),
        ({"sub": "p-adam", "exp": "later"}, "expiry"),
        ({"sub": "p-adam", "exp": True}, "expiry"),
    ],
    ids=repr,
)
def test_missing_or_bad_claims(claims: dict[str, Any], match: str) -> None:
    with pytest.raises(TokenError, match=match):
        verify(SECRET, forge(claims), now=NOW)


def test_claims_not_an_object() -> None:
    head = b64(json.dumps({"alg": "HS256"}).encode())
    body = b64(b"[1, 2]")
    signature = b64(hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(TokenError, match="object"):
        verify(SECRET, f"{head}.{body}.{signature}", now=NOW)


def _valid_parts() -> list[str]:
    return issue(SECRET, "p-adam", 60, now=NOW).split(".")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9",
        ".".join(_valid_parts()[:2]) + ".@@@@",
        "x" * 5000,
        "a." * 3000 + "b",
    ],
    ids=lambda t: repr(t)[:30],
)
def test_malformed_tokens_raise_token_error(token: str) -> None:
    with pytest.raises(TokenError):
        verify(SECRET, token, now=NOW)


def test_non_ascii_claims_behind_a_valid_header() -> None:
    head, _, signature = _valid_parts()
    with pytest.raises(TokenError):
        verify(SECRET, f"{head}.é.{signature}", now=NOW)


@pytest.mark.parametrize("token", [None, 42, b"a.b.c", ["a", "b", "c"], {"sub": "p-adam"}])
def test_non_string_token(token: object) -> None:
    with pytest.raises(TokenError, match="string"):
        verify(SECRET, token, now=NOW)


def test_huge_token_refused_before_parsing() -> None:
    token = forge({"sub": "p-adam", "exp": NOW + 60, "pad": "x" * 5000})
    with pytest.raises(TokenError, match="4096"):
        verify(SECRET, token, now=NOW)
