"""Sign-in end to end (issue 11): a real SMTP server, two `liaison serve` gateways over one Redis
and one store, WebSockets with the access tokens, and the refusals (wrong, expired and locked
codes, unknown addresses, a removed person)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FAST
from tests.integration.signin_helpers import Answer, acall, call, nth_code
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.redis_servers import RedisServer
from tests.support.smtp_server import SmtpServer, text_of
from tests.support.ws_client import Client

pytestmark = pytest.mark.integration

KEY = "k" * 32
SECRET = "s" * 40
ANA = "ana.lopes@example.fr"
TOM_TEACHER = "roux@example.fr"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def school(base: str) -> None:
    """A school with a teacher, a class, a guardian with an e-mail address and her son."""
    puts = [
        ("/api/v1/admin/schools/ecole-hugo", {"name": "École Victor Hugo", "year": "2026-2027"}),
        ("/api/v1/admin/people/t-roux", {"school_id": "ecole-hugo", "name": "Mme Roux", "role": "teacher",
                                         "email": TOM_TEACHER}),
        ("/api/v1/admin/classes/ce1-a", {"school_id": "ecole-hugo", "name": "CE1 A", "teachers": ["t-roux"]}),
        ("/api/v1/admin/people/p-lopes", {"school_id": "ecole-hugo", "name": "Ana Lopes", "role": "guardian",
                                          "email": "Ana.Lopes@Example.fr"}),
        ("/api/v1/admin/people/p-nobody", {"school_id": "ecole-hugo", "name": "Paul Martin",
                                           "role": "guardian", "email": "paul.martin@example.fr"}),
        ("/api/v1/admin/students/s-tom", {"class_id": "ce1-a", "name": "Tom Lopes",
                                          "guardians": ["p-lopes", "p-nobody"]}),
    ]
    for path, body in puts:
        answer = call(base, "PUT", path, body, bearer=KEY)
        assert answer.status in (200, 201), answer.body


def env_for(smtp: SmtpServer, store: Path, **extra: str) -> dict[str, str]:
    return {**FAST, "LIAISON_JWT_SECRET": SECRET, "LIAISON_API_KEY": KEY, "LIAISON_SMTP_URL": smtp.url(),
            "LIAISON_SMTP_FROM": "liaison@ecole-hugo.example", "LIAISON_STORE_URL": f"sqlite:///{store}",
            **extra}


@pytest.fixture
def two_gateways(tmp_path: Path, smtp: SmtpServer, redis_server: RedisServer) -> Iterator[list[GatewayProcess]]:
    """Gateways A and B over one Redis and one store; the school is made (on A) before B starts."""
    env = env_for(smtp, tmp_path / "shared.db", LIAISON_REDIS_URL=redis_server.url,
                  LIAISON_REFRESH_GRACE="0.001")
    started: list[GatewayProcess] = []
    try:
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            started.append(start_gateway(workdir, env=env, demo=False))
            if name == "a":
                school(started[0].http)
        yield started
    finally:
        for gateway in started:
            gateway.stop()


@pytest.fixture
def one_gateway(tmp_path: Path, smtp: SmtpServer) -> Iterator[GatewayProcess]:
    gateway = start_gateway(tmp_path, env=env_for(smtp, tmp_path / "one.db"), demo=False)
    school(gateway.http)
    yield gateway
    gateway.stop()


async def connect(gateway: GatewayProcess, token: str) -> Client:
    client = await Client.open(gateway.ws)
    client.connected = await client.ok("connect", token=token)
    return client


async def closed_code(client: Client) -> int | None:
    """The code the server closed the WebSocket with (the client's reader then ends quietly)."""
    code = await client.closed()
    await client.close()
    return code


async def sign_in(gateway: GatewayProcess, smtp: SmtpServer, nth: int, device: str, **extra: str) -> Answer:
    assert (await acall(gateway.http, "POST", "/api/v1/auth/code", {"email": ANA})).status == 202
    code = await nth_code(smtp, ANA, nth)
    answer = await acall(gateway.http, "POST", "/api/v1/auth/verify",
                         {"email": ANA, "code": code, "device": device, **extra})
    assert answer.status == 200, answer.body
    return answer


async def test_a_guardian_signs_in_end_to_end_over_two_gateways(two_gateways, smtp):
    a, b = two_gateways
    # the code is asked for on A (the address as she types it), the e-mail comes, she types it in on B
    asked = await acall(a.http, "POST", "/api/v1/auth/code", {"email": " Ana.Lopes@example.FR "})
    assert asked.status == 202
    code = await nth_code(smtp, ANA, 1)
    mail = smtp.received[0]
    assert mail.mail_from == "liaison@ecole-hugo.example" and "École Victor Hugo" in text_of(mail.message)
    verified = await acall(b.http, "POST", "/api/v1/auth/verify",
                           {"email": ANA, "code": code[:3] + " " + code[3:], "device": "Téléphone d'Ana"})
    assert verified.status == 200, verified.body
    body = verified.body
    assert body["user"] == {"id": "p-lopes", "name": "Ana Lopes", "role": "guardian"}
    assert body["expires_in"] == 900 and "refresh_token" not in body
    first = verified.refresh_cookie
    assert first is not None
    attributes = verified.cookie_attributes.lower()
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/api/v1/auth" in attributes
    assert "secure" not in attributes  # plain http to 127.0.0.1 only
    # the code is used up
    again = await acall(b.http, "POST", "/api/v1/auth/verify", {"email": ANA, "code": code, "device": "x"})
    assert again.status == 401

    phone = await connect(a, body["access_token"])
    assert phone.connected["user"]["id"] == "p-lopes" and "class:ce1-a" in str(phone.connected["channels"])

    refreshed = await acall(b.http, "POST", "/api/v1/auth/refresh", cookie=first)
    assert refreshed.status == 200, refreshed.body
    assert refreshed.body["user"]["id"] == "p-lopes" and refreshed.refresh_cookie not in (None, first)
    still = await connect(b, refreshed.body["access_token"])  # the new access token works
    await still.close()

    # the old credential again: a stolen copy; the session ends everywhere, its WebSocket on A closes
    reused = await acall(b.http, "POST", "/api/v1/auth/refresh", cookie=first)
    assert reused.status == 401 and "used already" in reused.body["error"]["message"]
    assert await closed_code(phone) == 4401
    after = await acall(a.http, "POST", "/api/v1/auth/refresh", cookie=refreshed.refresh_cookie)
    assert after.status == 401
    refused = await Client.open(a.ws)
    assert await refused.error("connect", token=refreshed.body["access_token"]) == "unauthorized"
    await refused.close()

    # two devices; the second ends the first's session; the first's WebSocket on A closes at once
    laptop = await sign_in(a, smtp, 2, "Ordinateur")
    tablet = await sign_in(b, smtp, 3, "Tablette", client="native")
    assert tablet.body["refresh_token"] == tablet.refresh_cookie
    laptop_ws = await connect(a, laptop.body["access_token"])
    listed = await acall(b.http, "GET", "/api/v1/me/sessions", bearer=tablet.body["access_token"])
    assert listed.status == 200
    sessions = {s["device"]: s for s in listed.body["sessions"]}
    assert set(sessions) == {"Ordinateur", "Tablette"}
    assert sessions["Tablette"]["current"] and not sessions["Ordinateur"]["current"]
    ended = await acall(b.http, "DELETE", f"/api/v1/me/sessions/{sessions['Ordinateur']['id']}",
                        bearer=tablet.body["access_token"])
    assert ended.status == 204
    assert await closed_code(laptop_ws) == 4401
    gone = await acall(a.http, "POST", "/api/v1/auth/refresh", cookie=laptop.refresh_cookie)
    assert gone.status == 401
    left = await acall(a.http, "GET", "/api/v1/me/sessions", bearer=tablet.body["access_token"])
    assert [s["device"] for s in left.body["sessions"]] == ["Tablette"]
    # a native client refreshes with the body, and signs out
    native = await acall(a.http, "POST", "/api/v1/auth/refresh", {"refresh_token": tablet.body["refresh_token"]})
    assert native.status == 200 and native.body["refresh_token"] != tablet.body["refresh_token"]
    out = await acall(a.http, "POST", "/api/v1/auth/logout", {"refresh_token": native.body["refresh_token"]})
    assert out.status == 204
    assert (await acall(b.http, "GET", "/api/v1/me/sessions", bearer=native.body["access_token"])).status == 401


async def test_wrong_codes_count_and_the_fifth_locks_the_address(one_gateway, smtp):
    base = one_gateway.http
    await acall(base, "POST", "/api/v1/auth/code", {"email": ANA})
    code = await nth_code(smtp, ANA, 1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        answer = await acall(base, "POST", "/api/v1/auth/verify", {"email": ANA, "code": wrong, "device": "x"})
        assert answer.status == 400 and answer.body["error"]["code"] == "bad_request"
        assert answer.body["error"]["attempts_left"] == left
    locked = await acall(base, "POST", "/api/v1/auth/verify", {"email": ANA, "code": wrong, "device": "x"})
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 60
    # the right code no longer works, and asking for a new one answers the same 202 (but sends nothing)
    right = await acall(base, "POST", "/api/v1/auth/verify", {"email": ANA, "code": code, "device": "x"})
    assert right.status == 429
    assert (await acall(base, "POST", "/api/v1/auth/code", {"email": ANA})).status == 202
    await acall(base, "POST", "/api/v1/auth/code", {"email": TOM_TEACHER})
    await nth_code(smtp, TOM_TEACHER, 1)  # a later request's e-mail came: the locked one's would have too
    assert len([r for r in smtp.received if ANA in r.rcpt_tos]) == 1


async def test_unknown_addresses_get_the_same_answer_and_no_mail(one_gateway, smtp):
    base = one_gateway.http
    unknown = await acall(base, "POST", "/api/v1/auth/code", {"email": "nobody@example.fr"})
    malformed = await acall(base, "POST", "/api/v1/auth/code", {"email": "not an address"})
    known = await acall(base, "POST", "/api/v1/auth/code", {"email": ANA})
    assert unknown.status == malformed.status == known.status == 202
    assert unknown.body == malformed.body == known.body
    assert dict(unknown.headers).keys() == dict(known.headers).keys()
    await nth_code(smtp, ANA, 1)
    assert [r.rcpt_tos for r in smtp.received] == [(ANA,)]
    # verifying for an unknown address is refused like a known one without a code
    nobody = await acall(base, "POST", "/api/v1/auth/verify", {"email": "nobody@example.fr", "code": "123456",
                                                               "device": "x"})
    assert nobody.status == 401


async def test_an_expired_code_is_refused(tmp_path, smtp):
    # codes valid a millisecond: expired before the e-mail is even read (no waiting on a clock)
    gateway = start_gateway(tmp_path, env=env_for(smtp, tmp_path / "exp.db", LIAISON_CODE_TTL="0.001"),
                            demo=False)
    try:
        school(gateway.http)
        await acall(gateway.http, "POST", "/api/v1/auth/code", {"email": ANA})
        code = await nth_code(smtp, ANA, 1)
        answer = await acall(gateway.http, "POST", "/api/v1/auth/verify", {"email": ANA, "code": code,
                                                                           "device": "x"})
        assert answer.status == 401 and "expired" in answer.body["error"]["message"]
    finally:
        gateway.stop()


async def test_a_removed_person_is_signed_out_everywhere(one_gateway, smtp):
    base = one_gateway.http
    signed = await sign_in(one_gateway, smtp, 1, "Téléphone")
    phone = await connect(one_gateway, signed.body["access_token"])
    deleted = await acall(base, "DELETE", "/api/v1/admin/people/p-lopes", bearer=KEY)
    assert deleted.status == 200
    assert await closed_code(phone) == 4401
    assert (await acall(base, "POST", "/api/v1/auth/refresh", cookie=signed.refresh_cookie)).status == 401
    assert (await acall(base, "GET", "/api/v1/me/sessions", bearer=signed.body["access_token"])).status == 401
    # her address is nobody's now: the same 202, and no e-mail
    assert (await acall(base, "POST", "/api/v1/auth/code", {"email": ANA})).status == 202
    await acall(base, "POST", "/api/v1/auth/code", {"email": TOM_TEACHER})
    await nth_code(smtp, TOM_TEACHER, 1)
    assert len([r for r in smtp.received if ANA in r.rcpt_tos]) == 1


async def test_an_administrator_ends_a_persons_sessions(one_gateway, smtp):
    signed = await sign_in(one_gateway, smtp, 1, "Téléphone")
    phone = await connect(one_gateway, signed.body["access_token"])
    ended = await acall(one_gateway.http, "DELETE", "/api/v1/admin/people/p-lopes/sessions", bearer=KEY)
    assert ended.status == 200 and ended.body == {"ended": 1}
    assert await closed_code(phone) == 4401


async def test_an_ended_sessions_access_token_is_refused_by_every_user_route_at_once(one_gateway, smtp):
    """Not only when it expires (15 minutes later): the HTTP user routes ask whether its device
    session is still live, as the WebSocket does."""
    signed = await sign_in(one_gateway, smtp, 1, "Téléphone")
    token = signed.body["access_token"]
    routes = ["/api/v1/me/unread", "/api/v1/me/notification-preferences", "/api/v1/me/consents",
              "/api/v1/channels/class:cp-a/messages"]
    before = [(await acall(one_gateway.http, "GET", path, bearer=token)).status for path in routes]
    assert 401 not in before
    ended = await acall(one_gateway.http, "DELETE", "/api/v1/admin/people/p-lopes/sessions", bearer=KEY)
    assert ended.status == 200
    for path in routes:
        answer = await acall(one_gateway.http, "GET", path, bearer=token)
        assert answer.status == 401, path
        assert "session has ended" in answer.body["error"]["message"]


async def test_invitations_go_once_to_who_never_signed_in(one_gateway, smtp):
    base = one_gateway.http
    await sign_in(one_gateway, smtp, 1, "Téléphone")  # Ana has signed in
    first = await acall(base, "POST", "/api/v1/admin/classes/ce1-a/invitations", bearer=KEY)
    assert first.status == 200, first.body
    assert first.body["sent"] == 2 and first.body["skipped_because"]["signed_in"] == 1  # Mme Roux, Paul Martin
    invited = {r.rcpt_tos[0] for r in smtp.received if "vous invite" in str(r.message["Subject"])}
    assert invited == {TOM_TEACHER, "paul.martin@example.fr"}
    again = await acall(base, "POST", "/api/v1/admin/schools/ecole-hugo/invitations", bearer=KEY)
    assert again.body["sent"] == 0 and again.body["skipped_because"]["invited_recently"] == 2
    missing = await acall(base, "POST", "/api/v1/admin/classes/nope/invitations", bearer=KEY)
    assert missing.status == 404
