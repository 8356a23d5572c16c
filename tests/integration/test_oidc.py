"""Tokens of a school's identity provider (issue 11): a local OpenID provider on 127.0.0.1 (its
discovery document and JWKS, keys made by the test), a real `liaison serve --demo` that finds the
keys from the issuer, accepts its tokens at `connect` and at POST /api/v1/auth/oidc, follows a
key rotation, and refuses another issuer, audience or key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.integration.conftest import FAST
from tests.integration.conftest import token as own_token
from tests.integration.signin_helpers import acall
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.ws_client import Client

pytestmark = pytest.mark.integration

AUDIENCE = "liaison-ecole-jaures"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class Provider:
    """An identity provider's public face: /.well-known/openid-configuration and its JWKS."""

    def __init__(self) -> None:
        self.keys: dict[str, PrivateKey] = {}  # kid -> private key; the public halves are served
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    document: dict[str, Any] = {"issuer": provider.issuer, "jwks_uri": provider.issuer + "/jwks"}
                elif self.path == "/jwks":
                    document = {"keys": provider.jwks()}
                else:
                    self.send_error(404)
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def jwks(self) -> list[dict[str, Any]]:
        keys = []
        for kid, key in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                jwk["alg"] = "RS256"
            else:
                jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
                jwk["alg"] = "ES256"
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return keys

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def id_token(key: PrivateKey, kid: str, *, issuer: str, audience: str = AUDIENCE,
             email: str = "Claire.Petit@example.fr", ttl: int = 600) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "sub": "ent-42", "email": email, "email_verified": True,
              "iat": now, "exp": now + ttl}
    alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    yield server
    server.stop()


@pytest.fixture
def gateway(tmp_path: Path, provider: Provider) -> Iterator[GatewayProcess]:
    # no LIAISON_OIDC_JWKS_URL: found in the issuer's discovery document; a rotation is followed at once
    env = {**FAST, "LIAISON_OIDC_ISSUER": provider.issuer, "LIAISON_OIDC_AUDIENCE": AUDIENCE,
           "LIAISON_OIDC_REFETCH": "0.001"}
    server = start_gateway(tmp_path, env=env)
    yield server
    server.stop()


async def connect_error(gateway: GatewayProcess, token: str) -> tuple[str, int | None]:
    client = await Client.open(gateway.ws)
    try:
        reply = await client.call("connect", token=token)
        return reply["error"]["code"], await client.closed()
    finally:
        await client.close()


async def test_provider_tokens_are_accepted_and_a_rotation_followed(gateway, provider):
    first = rsa_key()
    provider.keys = {"k1": first}
    token = id_token(first, "k1", issuer=provider.issuer)
    client = await Client.open(gateway.ws)
    connected = await client.ok("connect", token=token)
    assert connected["user"]["id"] == "p-lea-mere"  # the e-mail matched case-insensitively
    await client.close()
    exchanged = await acall(gateway.http, "POST", "/api/v1/auth/oidc", {"id_token": token, "device": "ENT"})
    assert exchanged.status == 200, exchanged.body
    assert exchanged.body["user"]["id"] == "p-lea-mere" and exchanged.refresh_cookie
    sessions = await acall(gateway.http, "GET", "/api/v1/me/sessions", bearer=exchanged.body["access_token"])
    assert [s["device"] for s in sessions.body["sessions"]] == ["ENT"]

    # the provider rotates to a new key (ES256 this time): a token with the new kid works at once
    second = ec.generate_private_key(ec.SECP256R1())
    provider.keys = {"k2": second}
    client = await Client.open(gateway.ws)
    connected = await client.ok("connect", token=id_token(second, "k2", issuer=provider.issuer))
    assert connected["user"]["id"] == "p-lea-mere"
    await client.close()
    # the retired key's tokens are refused now
    assert await connect_error(gateway, token) == ("unauthorized", 4401)


async def test_tokens_of_another_issuer_audience_or_key_are_refused(gateway, provider):
    key = rsa_key()
    provider.keys = {"k1": key}
    stranger = rsa_key()
    refused = {
        "issuer": id_token(key, "k1", issuer="http://127.0.0.1:1"),
        "audience": id_token(key, "k1", issuer=provider.issuer, audience="another-app"),
        "key": id_token(stranger, "k1", issuer=provider.issuer),  # the provider's kid, another key
        "unknown kid": id_token(stranger, "k9", issuer=provider.issuer),
        "expired": id_token(key, "k1", issuer=provider.issuer, ttl=-3600),
    }
    for why, token in refused.items():
        assert await connect_error(gateway, token) == ("unauthorized", 4401), why
        answer = await acall(gateway.http, "POST", "/api/v1/auth/oidc", {"id_token": token})
        assert answer.status == 401, why
    nobody = id_token(key, "k1", issuer=provider.issuer, email="nobody@example.fr")
    answer = await acall(gateway.http, "POST", "/api/v1/auth/oidc", {"id_token": nobody})
    assert answer.status == 401 and "directory" in answer.body["error"]["message"]
    # the gateway's own tokens keep working beside the provider's
    client = await Client.open(gateway.ws)
    assert (await client.ok("connect", token=own_token("t-martin")))["user"]["id"] == "t-martin"
    await client.close()
