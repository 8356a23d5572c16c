"""HS256 tokens: issue/verify, and every way a token is refused (security review, issue 10)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

import auth.tokens as tokens_module
from auth.tokens import MIN_SECRET_BYTES, Claims, TokenError, issue, verify, verify_access, verify_claims
from school.errors import ErrorCode, LiaisonError, Unauthorized

SECRET = b"k" * 32
NOW = 1_800_000_000


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(claims: dict[str, Any], header: dict[str, Any] | None = None, secret: bytes = SECRET) -> str:
    """A token signed with HMAC-SHA256 whatever its header says (the old hand-written format)."""
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def resign(head: str, body: str, secret: bytes = SECRET) -> str:
    """`head.body` with a correct HS256 signature over exactly these two segments."""
    return b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "p-adam", "exp": NOW + 60, **extra}


# -- round trip and compatibility ---------------------------------------------------------


def test_round_trip() -> None:
    token = issue(SECRET, "t-martin", 3600, now=NOW)
    assert verify(SECRET, token, now=NOW + 10) == "t-martin"
    assert verify_claims(SECRET, token, now=NOW + 10) == ("t-martin", float(NOW + 3600))


def test_forged_helper_agrees_with_issue() -> None:
    """Tokens in the format of the hand-written implementation still verify after the switch."""
    assert verify(SECRET, forge({"sub": "p-adam", "exp": NOW + 60}), now=NOW) == "p-adam"


def test_issued_tokens_are_standard_jwts() -> None:
    token = issue(SECRET, "t-martin", 60, now=NOW, audience="liaison", issuer="https://ecole.example")
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert jwt.decode(token, SECRET, algorithms=["HS256"], audience="liaison",
                      options={"verify_exp": False, "verify_iat": False}) == {
        "sub": "t-martin", "iat": NOW, "exp": NOW + 60, "aud": "liaison", "iss": "https://ecole.example"}


def test_issue_sets_no_aud_or_iss_unless_asked() -> None:
    token = issue(SECRET, "t-martin", 60, now=NOW)
    assert set(jwt.decode(token, options={"verify_signature": False})) == {"sub", "iat", "exp"}


# -- expiry and the clock --------------------------------------------------------------------


@pytest.mark.parametrize(("age", "valid"), [(59, True), (60, True), (90, True), (91, False), (10_000, False)])
def test_expiry_with_leeway(age: int, valid: bool) -> None:
    token = issue(SECRET, "t-martin", 60, now=NOW)
    if valid:
        assert verify(SECRET, token, now=NOW + age, leeway=30) == "t-martin"
    else:
        with pytest.raises(TokenError, match="expired"):
            verify(SECRET, token, now=NOW + age, leeway=30)


def test_default_leeway_is_30_seconds() -> None:
    token = issue(SECRET, "t-martin", 60, now=NOW)
    assert verify(SECRET, token, now=NOW + 90) == "t-martin"
    with pytest.raises(TokenError, match="expired"):
        verify(SECRET, token, now=NOW + 91)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize(("ahead", "valid"), [(0, True), (30, True), (31, False), (86_400 * 365, False)])
def test_not_yet_valid_tokens_refused(claim: str, ahead: int, valid: bool) -> None:
    """Attack: a token whose `nbf` or `iat` lies in the future was accepted."""
    token = forge({"sub": "p-adam", "exp": NOW + 10 * 86_400 * 365, claim: NOW + ahead})
    if valid:
        assert verify(SECRET, token, now=NOW, leeway=30) == "p-adam"
    else:
        with pytest.raises(TokenError, match="not valid yet") as caught:
            verify(SECRET, token, now=NOW, leeway=30)
        assert caught.value.reason == "not_yet_valid"


def test_issued_in_the_future_by_issue_is_refused() -> None:
    token = issue(SECRET, "p-adam", 3600, now=NOW + 120)
    with pytest.raises(TokenError, match="not valid yet"):
        verify(SECRET, token, now=NOW)
    assert verify(SECRET, token, now=NOW + 120) == "p-adam"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize("value", ["yesterday", True, None, [NOW], float("nan"), float("inf")], ids=repr)
def test_bad_nbf_or_iat_refused(claim: str, value: Any) -> None:
    with pytest.raises(TokenError, match=claim):
        verify(SECRET, forge(claims(**{claim: value})), now=NOW)


@pytest.mark.parametrize("exp", [float("nan"), float("inf"), 10**400], ids=["nan", "inf", "10**400"])
def test_exp_must_be_a_finite_number(exp: Any) -> None:
    """`NaN` never compares as expired; an enormous integer overflowed `float()` (a 500, not a 401)."""
    with pytest.raises(TokenError, match="expiry"):
        verify(SECRET, forge({"sub": "p-adam", "exp": exp}), now=NOW)


def test_clock_defaults_to_the_wall_clock() -> None:
    assert verify(SECRET, issue(SECRET, "p-adam", 60)) == "p-adam"
    with pytest.raises(TokenError, match="expired"):
        verify(SECRET, issue(SECRET, "p-adam", 60, now=1_000_000_000))  # September 2001


# -- signature and encoding ------------------------------------------------------------------


def test_wrong_secret() -> None:
    token = issue(SECRET, "t-martin", 60, now=NOW)
    with pytest.raises(TokenError, match="signature"):
        verify(b"x" * 32, token, now=NOW)


def test_tampered_payload() -> None:
    head, _, signature = issue(SECRET, "p-adam", 60, now=NOW).split(".")
    body = b64(json.dumps({"sub": "d-bernard", "exp": NOW + 60}).encode())
    with pytest.raises(TokenError, match="signature"):
        verify(SECRET, f"{head}.{body}.{signature}", now=NOW)


@pytest.mark.parametrize("junk", ["!!!", "!", "*", " ", "+", "/", "%3D", "\n", "é", "\x00"], ids=repr)
@pytest.mark.parametrize("where", [0, 5, 20, -1])
def test_characters_inserted_in_the_signature_refused(junk: str, where: int) -> None:
    """Attack: the signature's base64 was decoded leniently, so `!!!` inserted in it still verified."""
    head, body, signature = issue(SECRET, "p-adam", 60, now=NOW).split(".")
    cut = len(signature) if where == -1 else where
    with pytest.raises(TokenError, match="malformed"):
        verify(SECRET, f"{head}.{body}.{signature[:cut]}{junk}{signature[cut:]}", now=NOW)


@pytest.mark.parametrize("junk", ["!!!", "=", "+", "/", " "], ids=repr)
def test_characters_inserted_in_header_or_claims_refused(junk: str) -> None:
    """Even with a signature computed over the altered segments, they must be strict base64url."""
    head, body, _ = issue(SECRET, "p-adam", 60, now=NOW).split(".")
    for h, b in ((head[:4] + junk + head[4:], body), (head, body[:4] + junk + body[4:])):
        with pytest.raises(TokenError, match="malformed"):
            verify(SECRET, f"{h}.{b}.{resign(h, b)}", now=NOW)


@pytest.mark.parametrize("padding", ["=", "==", "==="])
def test_padded_signature_refused(padding: str) -> None:
    """JWS segments are base64url *without* padding (RFC 7515 §2); a padded copy is another token."""
    head, body, signature = issue(SECRET, "p-adam", 60, now=NOW).split(".")
    assert len(signature) % 4 == 3  # a 32-byte signature: exactly one `=` would make it canonical base64
    with pytest.raises(TokenError, match="malformed"):
        verify(SECRET, f"{head}.{body}.{signature}{padding}", now=NOW)


def test_padded_header_and_claims_refused_even_when_signed() -> None:
    padded_head = base64.urlsafe_b64encode(b'{"alg": "HS256"}').decode()
    padded_body = base64.urlsafe_b64encode(json.dumps(claims(x="a")).encode()).decode()
    assert padded_head.endswith("==") and padded_body.endswith("=")
    head, body = padded_head.rstrip("="), padded_body.rstrip("=")
    assert verify(SECRET, f"{head}.{body}.{resign(head, body)}", now=NOW) == "p-adam"
    for h, b in ((padded_head, body), (head, padded_body)):
        with pytest.raises(TokenError, match="malformed"):
            verify(SECRET, f"{h}.{b}.{resign(h, b)}", now=NOW)


def test_non_canonical_trailing_bits_refused() -> None:
    """The last base64 character of a 32-byte signature carries 2 unused bits: changing them
    decodes to the same bytes, so a lenient decoder accepts several spellings of one token."""
    head, body, signature = issue(SECRET, "p-adam", 60, now=NOW).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twin = signature[:-1] + alphabet[last ^ 1]
    assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(signature + "=")
    with pytest.raises(TokenError, match="malformed"):
        verify(SECRET, f"{head}.{body}.{twin}", now=NOW)


# -- algorithm --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS512", "HS384", "RS256", "ES256", "hs256", "HS256 ",
                                 "", None, ["HS256"], {"HS256": 1}, 256], ids=repr)
def test_other_algorithms_refused(alg: Any) -> None:
    token = forge({"sub": "d-bernard", "exp": NOW + 60}, header={"alg": alg, "typ": "JWT"})
    with pytest.raises(TokenError, match="HS256"):
        verify(SECRET, token, now=NOW)


def test_header_without_alg_refused() -> None:
    with pytest.raises(TokenError, match="HS256"):
        verify(SECRET, forge(claims(), header={"typ": "JWT"}), now=NOW)


@pytest.mark.parametrize("signature", ["", "AAAA"])
def test_alg_none_refused(signature: str) -> None:
    head = b64(json.dumps({"alg": "none"}).encode())
    body = b64(json.dumps({"sub": "d-bernard", "exp": NOW + 60}).encode())
    with pytest.raises(TokenError):
        verify(SECRET, f"{head}.{body}.{signature}", now=NOW)


def test_hs512_token_signed_with_our_secret_refused() -> None:
    """A genuine HS512 token with the right secret: still not HS256, so refused."""
    secret = b"k" * 64  # PyJWT warns about shorter HS512 keys
    token = jwt.encode(claims(), secret, algorithm="HS512")
    with pytest.raises(TokenError, match="HS256"):
        verify(secret, token, now=NOW)


@pytest.mark.parametrize("header", [
    {"alg": "HS256", "crit": ["exp"], "exp": 1},
    {"alg": "HS256", "crit": "b64"},
    {"alg": "HS256", "b64": False, "crit": ["b64"]},
], ids=repr)
def test_headers_we_do_not_understand_refused(header: dict[str, Any]) -> None:
    with pytest.raises(TokenError):
        verify(SECRET, forge(claims(), header=header), now=NOW)


# -- audience and issuer ----------------------------------------------------------------------


def test_audience_and_issuer_round_trip() -> None:
    token = issue(SECRET, "p-adam", 60, now=NOW, audience="liaison", issuer="https://idp.example")
    assert verify(SECRET, token, now=NOW, audience="liaison", issuer="https://idp.example") == "p-adam"
    assert verify_claims(SECRET, token, now=NOW, audience="liaison") == ("p-adam", float(NOW + 60))


@pytest.mark.parametrize("aud", [None, "other", ["other"], [], "", 42, ["liaison", 42]], ids=repr)
def test_audience_missing_or_different_refused(aud: Any) -> None:
    token = forge(claims() if aud is None else claims(aud=aud))
    with pytest.raises(TokenError, match="audience") as caught:
        verify(SECRET, token, now=NOW, audience="liaison")
    assert caught.value.reason == "audience"


def test_audience_in_a_list_accepted() -> None:
    """RFC 7519 §4.1.3: `aud` may be an array; the token is for us if our name is in it."""
    assert verify(SECRET, forge(claims(aud=["liaison", "other"])), now=NOW, audience="liaison") == "p-adam"


def test_token_for_an_audience_refused_when_none_is_configured() -> None:
    """RFC 7519 §4.1.3: a token naming an audience is refused by a service that is not in it."""
    with pytest.raises(TokenError, match="audience"):
        verify(SECRET, forge(claims(aud="another-service")), now=NOW)


@pytest.mark.parametrize("iss", [None, "https://evil.example", "", 42, ["https://idp.example"]], ids=repr)
def test_issuer_missing_or_different_refused(iss: Any) -> None:
    token = forge(claims() if iss is None else claims(iss=iss))
    with pytest.raises(TokenError, match="issuer") as caught:
        verify(SECRET, token, now=NOW, issuer="https://idp.example")
    assert caught.value.reason == "issuer"


def test_issuer_ignored_when_not_configured() -> None:
    assert verify(SECRET, forge(claims(iss="https://idp.example")), now=NOW) == "p-adam"


# -- claims ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ({"exp": NOW + 60}, "subject"),
        ({"sub": "", "exp": NOW + 60}, "subject"),
        ({"sub": 42, "exp": NOW + 60}, "subject"),
        ({"sub": None, "exp": NOW + 60}, "subject"),
        ({"sub": ["p-adam"], "exp": NOW + 60}, "subject"),
        ({"sub": "x" * 129, "exp": NOW + 60}, "subject"),
        ({"sub": "p-adam"}, "expiry"),
        ({"sub": "p-adam", "exp": "later"}, "expiry"),
        ({"sub": "p-adam", "exp": str(NOW + 60)}, "expiry"),
        ({"sub": "p-adam", "exp": True}, "expiry"),
        ({"sub": "p-adam", "exp": None}, "expiry"),
    ],
    ids=repr,
)
def test_missing_or_bad_claims(claims: dict[str, Any], match: str) -> None:
    with pytest.raises(TokenError, match=match):
        verify(SECRET, forge(claims), now=NOW)


def test_subject_of_128_characters_accepted() -> None:
    assert verify(SECRET, forge({"sub": "x" * 128, "exp": NOW + 60}), now=NOW) == "x" * 128


def test_fractional_exp_accepted() -> None:
    assert verify_claims(SECRET, forge({"sub": "p-adam", "exp": NOW + 0.5}), now=NOW) == ("p-adam", NOW + 0.5)


def test_claims_not_an_object() -> None:
    head = b64(json.dumps({"alg": "HS256"}).encode())
    body = b64(b"[1, 2]")
    with pytest.raises(TokenError, match="malformed"):
        verify(SECRET, f"{head}.{body}.{resign(head, body)}", now=NOW)


def _valid_parts() -> list[str]:
    return issue(SECRET, "p-adam", 60, now=NOW).split(".")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "!!!.###.$$$",
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9",
        ".".join(_valid_parts()[:2]) + ".@@@@",
        ".".join(_valid_parts()[:2]) + ".",
        ".".join(_valid_parts()) + "\n",
        " " + ".".join(_valid_parts()),
        ".".join(_valid_parts()) + ".",
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


# -- the error itself ----------------------------------------------------------------------------


def test_token_error_is_unauthorized_and_ends_the_session() -> None:
    token = issue(SECRET, "p-adam", 60, now=NOW)
    with pytest.raises(TokenError) as caught:
        verify(SECRET, token, now=NOW + 3600)
    error = caught.value
    assert isinstance(error, Unauthorized) and isinstance(error, LiaisonError)
    assert error.code is ErrorCode.UNAUTHORIZED
    assert error.fatal
    assert error.reason == "expired"
    assert error.body() == {"code": "unauthorized", "message": "token expired: sign in again"}
    assert str(error) == "token expired: sign in again"


@pytest.mark.parametrize("token", [
    "abc",
    forge(claims(), secret=b"x" * 32),
    forge(claims(), header={"alg": "none"}),
    forge({"sub": "p-adam", "exp": NOW - 3600}),
    forge(claims(nbf=NOW + 3600)),
    forge({"exp": NOW + 60}),
    forge({"sub": "p-adam"}),
    forge(claims(aud="other")),
], ids=range(8))
def test_every_refusal_tells_the_user_what_to_do(token: str) -> None:
    with pytest.raises(TokenError) as caught:
        verify(SECRET, token, now=NOW)
    message = caught.value.message
    assert message.startswith("token ") and ": " in message, message
    assert "sign in" in message, message
    assert len(message) <= 80, message


# -- the secret ------------------------------------------------------------------------------------


def test_short_secret_is_a_server_error_not_a_token_error() -> None:
    short = b"k" * (MIN_SECRET_BYTES - 1)
    with pytest.raises(ValueError, match="secret"):
        issue(short, "p-adam", 60, now=NOW)
    with pytest.raises(ValueError, match="secret") as caught:
        verify(short, forge(claims(), secret=short), now=NOW)
    assert not isinstance(caught.value, TokenError)


@pytest.mark.parametrize("user_id", ["", "x" * 129])
def test_issue_refuses_a_subject_that_verify_would_refuse(user_id: str) -> None:
    with pytest.raises(ValueError, match="user id"):
        issue(SECRET, user_id, 60, now=NOW)


# -- the device session (sid) ------------------------------------------------------------------


def test_session_id_round_trip() -> None:
    token = issue(SECRET, "p-adam", 900, now=NOW, session_id="s-123")
    assert jwt.decode(token, options={"verify_signature": False})["sid"] == "s-123"
    assert verify_access(SECRET, token, now=NOW) == Claims("p-adam", float(NOW + 900), "s-123")
    assert verify_claims(SECRET, token, now=NOW) == ("p-adam", float(NOW + 900))


def test_tokens_without_a_session_have_none() -> None:
    token = issue(SECRET, "p-adam", 60, now=NOW)
    assert "sid" not in jwt.decode(token, options={"verify_signature": False})
    assert verify_access(SECRET, token, now=NOW).session_id is None


@pytest.mark.parametrize("sid", ["", 42, None, ["s-1"], "x" * 129], ids=repr)
def test_bad_session_claim_refused(sid: Any) -> None:
    with pytest.raises(TokenError, match="session") as caught:
        verify_access(SECRET, forge(claims(sid=sid)), now=NOW)
    assert caught.value.reason == "session"


@pytest.mark.parametrize("session_id", ["", "x" * 129])
def test_issue_refuses_a_session_id_that_verify_would_refuse(session_id: str) -> None:
    with pytest.raises(ValueError, match="session id"):
        issue(SECRET, "p-adam", 60, now=NOW, session_id=session_id)


# -- the fast path for our own tokens (auth.tokens._ours): it must decide as PyJWT does -------

OUR_HEAD = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def ours(body: dict[str, Any] | str, secret: bytes = SECRET) -> str:
    """A token with exactly the header `issue` writes (the fast path's), over `body`."""
    segment = body if isinstance(body, str) else b64(json.dumps(body).encode())
    return f"{OUR_HEAD}.{segment}.{resign(OUR_HEAD, segment, secret)}"


def outcome(token: object) -> object:
    try:
        return verify_access(SECRET, token, NOW)
    except TokenError as exc:
        return ("refused", exc.reason, exc.message)


def test_our_header_is_what_issue_writes() -> None:
    assert issue(SECRET, "p-adam", 60, NOW).split(".")[0] == OUR_HEAD == tokens_module._OUR_HEADER


@pytest.mark.parametrize("token", [
    issue(SECRET, "p-adam", 60, NOW),
    issue(SECRET, "p-adam", 60, NOW, session_id="s-1"),
    issue(SECRET, "p-adam", -120, NOW),  # expired
    issue(SECRET, "p-adam", 60, NOW + 3600),  # issued in the future
    issue(b"o" * 32, "p-adam", 60, NOW),  # another secret
    ours(claims(nbf=NOW + 3600)),
    ours(claims(aud="somebody")),  # an audience while none is configured: refused
    ours(claims(iss="somebody")),
    ours(claims(jti=5)),
    ours(claims(sub="")),
    ours(claims(exp="tomorrow")),
    ours(claims(sid=7)),
    ours({"exp": NOW + 60}),
    ours("W10"),  # a JSON array, not an object
    ours(b64(b"\xff\xfe")),  # not UTF-8
    ours(b64(b"{not json")),
    ours("abcde"),  # not base64 (a length of 5)
    ours(claims())[:-1] + ("A" if ours(claims())[-1] != "A" else "B"),  # signature changed
    ours(claims()) + "x",  # a signature one character too long
])
def test_the_fast_path_decides_as_pyjwt_does(token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = outcome(token)
    monkeypatch.setattr(tokens_module, "_ours", lambda secret, token: None)
    assert fast == outcome(token)


def test_the_fast_path_is_taken_for_our_tokens_only() -> None:
    assert tokens_module._ours(SECRET, issue(SECRET, "p-adam", 60, NOW, session_id="s-1")) is not None
    assert tokens_module._ours(SECRET, issue(SECRET, "p-adam", 60, NOW, audience="a")) is None
    assert tokens_module._ours(SECRET, forge(claims())) is None  # another spelling of the header
    assert tokens_module._ours(b"o" * 32, issue(SECRET, "p-adam", 60, NOW)) is None
