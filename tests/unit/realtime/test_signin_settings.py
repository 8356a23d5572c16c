"""Sign-in settings (issue 11) and the pure parts of the sign-in service: the code key, finding a
person by e-mail, the provider-token test, and closing the connections of ended sessions."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from auth.tokens import issue
from realtime.config import ConfigError, Limits, SignInSettings, load_settings
from realtime.engine.gateway import Gateway
from realtime.metrics import Metrics
from realtime.services.oidc import provider_algorithm
from realtime.services.signin import code_key, person_by_email
from realtime.ws.close import CloseCode
from realtime.ws.codec import CODECS
from school.directory import Directory, Person, Role

BASE = {"LIAISON_JWT_SECRET": "s" * 32}


def test_defaults() -> None:
    s = load_settings(BASE).signin
    assert s == SignInSettings()
    assert (s.access_ttl, s.code_ttl, s.oidc_claim, s.smtp_url, s.oidc) == (900, 600.0, "email", None, False)


def test_every_variable_is_read() -> None:
    s = load_settings({**BASE, "LIAISON_SMTP_URL": "smtp+starttls://u:p%40ss@mail.example:587",
                       "LIAISON_SMTP_FROM": "liaison@ecole.example", "LIAISON_PUBLIC_URL": "https://liaison.example/",
                       "LIAISON_ACCESS_TTL": "600", "LIAISON_CODE_TTL": "0.5", "LIAISON_REFRESH_GRACE": "2",
                       "LIAISON_OIDC_ISSUER": "https://idp.example", "LIAISON_OIDC_AUDIENCE": "liaison",
                       "LIAISON_OIDC_JWKS_URL": "https://idp.example/keys", "LIAISON_OIDC_CLAIM": "upn",
                       "LIAISON_OIDC_REFETCH": "60"}).signin
    assert s.smtp_url is not None and "p%40ss" not in repr(s)
    assert (s.smtp_from, s.public_url, s.access_ttl, s.code_ttl, s.refresh_grace) == (
        "liaison@ecole.example", "https://liaison.example", 600, 0.5, 2.0)
    assert (s.oidc_issuer, s.oidc_audience, s.oidc_jwks_url, s.oidc_claim, s.oidc_refetch, s.oidc) == (
        "https://idp.example", "liaison", "https://idp.example/keys", "upn", 60.0, True)


@pytest.mark.parametrize(("env", "says"), [
    ({"LIAISON_SMTP_URL": "http://mail.example"}, "LIAISON_SMTP_URL"),
    ({"LIAISON_SMTP_FROM": "nobody"}, "LIAISON_SMTP_FROM"),
    ({"LIAISON_OIDC_ISSUER": "https://idp.example"}, "together"),
    ({"LIAISON_OIDC_AUDIENCE": "liaison"}, "together"),
    ({"LIAISON_OIDC_ISSUER": "http://idp.example", "LIAISON_OIDC_AUDIENCE": "x"}, "https"),
    ({"LIAISON_OIDC_JWKS_URL": "ftp://idp.example/keys"}, "LIAISON_OIDC_JWKS_URL"),
    ({"LIAISON_ACCESS_TTL": "0"}, "positive"),
])
def test_wrong_values_say_what_to_fix(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings({**BASE, **env})


def test_plain_http_is_allowed_to_a_provider_on_this_host() -> None:
    s = load_settings({**BASE, "LIAISON_OIDC_ISSUER": "http://127.0.0.1:9000", "LIAISON_OIDC_AUDIENCE": "x"})
    assert s.signin.oidc_issuer == "http://127.0.0.1:9000"


def test_the_code_key_is_derived_from_the_jwt_secret() -> None:
    secret = b"s" * 32
    assert code_key(secret) == hmac.new(secret, b"liaison sign-in codes", hashlib.sha256).digest()
    assert code_key(secret) != code_key(b"t" * 32) and len(code_key(secret)) == 32


def test_a_person_is_found_by_email_case_insensitively() -> None:
    d = Directory()
    d.put(Person("p-ana", "s1", "Ana", Role.GUARDIAN, "ana@example.fr"),
          Person("t-ana", "s1", "Ana (staff)", Role.TEACHER, "ana@example.fr"),
          Person("p-bob", "s1", "Bob", Role.GUARDIAN))
    found = person_by_email(d, "  ANA@Example.FR ")
    assert found is not None and found.id == "p-ana"
    assert person_by_email(d, "bob@example.fr") is None
    assert person_by_email(d, "not an address") is None


def test_provider_tokens_are_told_apart_from_ours() -> None:
    ours = issue(b"s" * 32, "p-ana", 60)
    assert provider_algorithm(ours) is None
    header_only = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"k"}').rstrip(b"=").decode()
    assert provider_algorithm(header_only + ".e30.c2ln") == "RS256"
    assert provider_algorithm(None) is None and provider_algorithm("x" * 5000) is None


async def test_ending_a_session_closes_only_its_connections() -> None:
    gateway = Gateway(Limits(), Metrics(), lambda channel, conn: None)
    codec = CODECS["liaison.v1.json"]
    (s1, c1), (s2, c2), (s3, c3) = (gateway.open_session(codec) for _ in range(3))
    gateway.bind_device_session(s1, "sid-a")
    gateway.bind_device_session(s2, "sid-a")
    gateway.bind_device_session(s3, "sid-b")
    assert gateway.close_device_sessions(["sid-a", "sid-unknown"]) == 2
    assert c1.close_code is CloseCode.UNAUTHORIZED and c2.close_code is CloseCode.UNAUTHORIZED
    assert c3.close_code is None
    gateway.close_session(s1, c1)
    gateway.close_session(s2, c2)
    assert "sid-a" not in gateway.by_device_session and gateway.by_device_session == {"sid-b": {s3.id}}
