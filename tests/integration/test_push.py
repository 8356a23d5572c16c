"""Web Push against real `liaison serve` processes and a real local push service
(tests/support/push_service.py verifies each push's VAPID signature and decrypts it with the
subscription's own keys). LIAISON_PUSH_ALLOWED_HOSTS=127.0.0.1 lets the server reach it.

Quiet hours are set per test through the admin API (no window at all, or all day), so the
outcome does not depend on when the suite runs; their timing is tested with an injected clock
in tests/unit/realtime/services/test_notifications.py.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest

from notify.webpush import PublicResolver, resolved_problem
from tests.integration.conftest import token
from tests.integration.signin_helpers import acall, call, demo_sign_in
from tests.support.gateway_server import GatewayProcess
from tests.support.push_service import PushService
from tests.support.waiting import UNIT, wait_for
from tests.support.ws_client import Client

API_KEY = "k" * 32
PUSH_ENV = {"LIAISON_API_KEY": API_KEY, "LIAISON_PUSH_ALLOWED_HOSTS": "127.0.0.1"}
NEVER_QUIET = {"start": "00:00", "end": "00:00", "weekends": False, "timezone": "Europe/Paris"}
ALWAYS_QUIET = {"start": "00:00", "end": "23:59", "weekends": True, "timezone": "Europe/Paris"}


def quiet_hours(gateway: GatewayProcess, rules: dict[str, Any]) -> None:
    answer = call(gateway.http, "PUT", "/api/v1/admin/schools/ecole-jaures/quiet-hours", rules, bearer=API_KEY)
    assert answer.status == 200, answer.body


async def subscribe(gateway: GatewayProcess, user: str, subscription: dict[str, Any]) -> str:
    answer = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", subscription, bearer=token(user))
    assert answer.status == 201, answer.body
    return str(answer.body["id"])


async def publish(client: Client, channel: str, kind: str = "post", **data: Any) -> int:
    reply = await client.ok("publish", channel=channel, kind=kind, data=data)
    return int(reply["seq"])


async def connected(gateway: GatewayProcess, user: str) -> Client:
    client = await Client.open(gateway.ws)
    await client.ok("connect", token=token(user))
    return client


async def test_an_offline_guardian_gets_one_push_per_message_an_online_one_none_and_410_removes(
        make_server: Callable[..., GatewayProcess], push_service: PushService) -> None:
    gateway = make_server(env=PUSH_ENV)
    quiet_hours(gateway, NEVER_QUIET)
    key = call(gateway.http, "GET", "/api/v1/push/key").body["vapid_public_key"]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4, "an uncompressed P-256 point"
    mere, pere, durand = (push_service.subscription(n) for n in ("mere", "pere", "durand"))
    mere_id = await subscribe(gateway, "p-lea-mere", mere.to_json())
    again = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", mere.to_json(),
                        bearer=token("p-lea-mere"))
    assert again.status in (200, 201) and again.body["id"] == mere_id, "the same endpoint: the same id"
    pere_id = await subscribe(gateway, "p-lea-pere", pere.to_json())
    await subscribe(gateway, "p-durand", durand.to_json())
    push_service.answer("pere", 410)
    online = await connected(gateway, "p-durand")
    teacher = await connected(gateway, "t-martin")
    try:
        first = await publish(teacher, "class:cp-a", text="Sortie au musée jeudi")
        await wait_for(lambda: push_service.to("mere") and push_service.statuses("pere"), what="the pushes")
        [push] = push_service.to("mere")
        assert push.payload["channel"] == "class:cp-a" and push.payload["seq"] == first
        assert push.payload["kind"] == "post" and push.payload["urgent"] is False
        assert push.payload["title"] == "Nouveau message de Mme Martin — CP A"
        assert "body" not in push.payload, "no text on the lock screen unless the person chose it"
        assert push.urgency == "normal" and push.ttl and push.topic and len(push.topic) <= 32
        assert push.vapid_key == key
        assert push_service.statuses("pere") == [410]
        # the 410 removed the father's subscription: deleting it now finds nothing
        gone = await acall(gateway.http, "DELETE", f"/api/v1/me/push-subscriptions/{pere_id}",
                           bearer=token("p-lea-pere"))
        assert gone.status == 404, gone.body
        second = await publish(teacher, "class:cp-a", text="N'oubliez pas les bottes")
        await wait_for(lambda: len(push_service.to("mere")) == 2, what="the second push")
        report = await teacher.ok("receipts", channel="class:cp-a", seq=first)
        assert report["notified"]["push"] == 1 and report["notified"]["failed"] == 0
        assert push_service.statuses("pere") == [410], "no push to a removed subscription"
        assert push_service.to("durand") == [], "connected: no push"
        assert [p.payload["seq"] for p in push_service.to("mere")] == [first, second]
        assert push_service.refused == []
    finally:
        await online.close()
        await teacher.close()


async def test_429_is_retried_after_retry_after_and_others_cannot_delete_a_subscription(
        make_server: Callable[..., GatewayProcess], push_service: PushService) -> None:
    gateway = make_server(env=PUSH_ENV)
    quiet_hours(gateway, NEVER_QUIET)
    adam = push_service.subscription("adam")
    adam_id = await subscribe(gateway, "p-adam", adam.to_json())
    other = await acall(gateway.http, "DELETE", f"/api/v1/me/push-subscriptions/{adam_id}",
                        bearer=token("p-durand"))
    assert other.status == 404, "only the owner's"
    push_service.answer("adam", 429, retry_after="1")
    teacher = await connected(gateway, "t-nguyen")
    try:
        started = time.time()
        seq = await publish(teacher, "class:cm2-b", kind="homework", text="Exercice 4 page 12", due="2030-01-10")
        await wait_for(lambda: push_service.to("adam"), timeout=UNIT * 2, what="the push after its 429")
        assert push_service.statuses("adam") == [429, 201]
        assert push_service.to("adam")[0].at - started >= 1.0, "Retry-After: 1 was honoured"
        assert push_service.to("adam")[0].payload["seq"] == seq
    finally:
        await teacher.close()
    mine = await acall(gateway.http, "DELETE", f"/api/v1/me/push-subscriptions/{adam_id}", bearer=token("p-adam"))
    assert mine.status == 204


async def test_endpoints_into_the_operators_network_are_refused(
        make_server: Callable[..., GatewayProcess], push_service: PushService) -> None:
    gateway = make_server(env={"LIAISON_API_KEY": API_KEY})  # 127.0.0.1 not allowed here
    keys = push_service.subscription("x").to_json()["keys"]
    for endpoint in ("http://10.0.0.1/push/x", "https://10.0.0.1/push/x", "https://127.0.0.1/push/x",
                     "https://localhost/push/x", "https://[::1]/push/x", "https://169.254.169.254/latest",
                     push_service.subscription("y").endpoint):
        answer = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions",
                             {"endpoint": endpoint, "keys": keys}, bearer=token("p-adam"))
        assert answer.status == 400, (endpoint, answer.body)
        assert "endpoint" in answer.body["error"]["message"]
    bad = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", {"endpoint": "https://x.example/"},
                      bearer=token("p-adam"))
    assert bad.status == 400 and "keys" in bad.body["error"]["message"]
    unsigned = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions",
                           {"endpoint": "https://x.example/", "keys": keys})
    assert unsigned.status == 401


async def test_an_urgent_announcement_is_pushed_at_once_inside_quiet_hours_other_posts_are_held(
        make_server: Callable[..., GatewayProcess], push_service: PushService) -> None:
    gateway = make_server(env=PUSH_ENV)
    quiet_hours(gateway, ALWAYS_QUIET)
    adam = push_service.subscription("adam")
    await subscribe(gateway, "p-adam", adam.to_json())
    teacher = await connected(gateway, "t-nguyen")
    director = await connected(gateway, "d-bernard")
    try:
        held = await publish(teacher, "class:cm2-b", text="Photos de la sortie")
        urgent = await publish(director, "school:ecole-jaures", kind="announcement", text="École fermée demain",
                               urgent=True)
        await wait_for(lambda: push_service.to("adam"), what="the urgent push")
        [push] = push_service.to("adam")
        assert push.payload["seq"] == urgent and push.payload["channel"] == "school:ecole-jaures"
        assert push.urgency == "high" and push.payload["urgent"] is True

        async def held_counted() -> bool:
            report = await teacher.ok("receipts", channel="class:cm2-b", seq=held)
            return bool(report["notified"]["held"] == 1)

        deadline = time.monotonic() + UNIT
        while not await held_counted():
            assert time.monotonic() < deadline, "the held post was not counted"
        assert [p.payload["seq"] for p in push_service.to("adam")] == [urgent], "the post waits for 07:00"
    finally:
        await teacher.close()
        await director.close()


async def test_a_subscription_ends_with_its_device_session(
        make_server: Callable[..., GatewayProcess], push_service: PushService) -> None:
    gateway = make_server(env=PUSH_ENV)
    quiet_hours(gateway, NEVER_QUIET)
    access = await demo_sign_in(gateway.http, "claire.petit@example.fr")
    mere, durand = push_service.subscription("mere"), push_service.subscription("durand")
    added = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", mere.to_json(), bearer=access)
    assert added.status == 201, added.body
    await subscribe(gateway, "p-durand", durand.to_json())
    ended = await acall(gateway.http, "DELETE", "/api/v1/admin/people/p-lea-mere/sessions", bearer=API_KEY)
    assert ended.status == 200 and ended.body["ended"] == 1, ended.body
    refused = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", mere.to_json(), bearer=access)
    assert refused.status == 401, "an ended session's token registers nothing"
    teacher = await connected(gateway, "t-martin")
    try:
        await publish(teacher, "class:cp-a", text="Réunion de parents")
        await wait_for(lambda: push_service.to("durand"), what="the push to the other family")
        second = await publish(teacher, "class:cp-a", text="Réunion déplacée")
        await wait_for(lambda: [p for p in push_service.to("durand") if p.payload["seq"] == second], what="2nd")
    finally:
        await teacher.close()
    assert push_service.to("mere") == [] and push_service.statuses("mere") == [], "signed out: no push"
    gone = await acall(gateway.http, "DELETE", f"/api/v1/me/push-subscriptions/{added.body['id']}",
                       bearer=token("p-lea-mere"))
    assert gone.status == 404, "removed with its session"


async def test_the_senders_resolver_refuses_names_of_private_addresses() -> None:
    """A host name checked at registration may point elsewhere later: the sender's own resolver
    refuses, at connect time, a name whose addresses are not all public (unless allowed)."""
    with pytest.raises(OSError, match="non-public"):
        await PublicResolver(frozenset()).resolve("localhost", 443)
    assert await PublicResolver(frozenset({"localhost"})).resolve("localhost", 443)
    assert await resolved_problem("https://localhost.localdomain/x", frozenset()) is not None


async def test_one_person_cannot_register_endless_subscriptions(
        make_server: Callable[..., GatewayProcess], push_service: PushService) -> None:
    """Every subscription is a push per message: a parent registering thousands of endpoints would
    make each class post thousands of requests to hosts of their choosing. A person keeps at most
    MAX_SUBSCRIPTIONS; the same endpoint again is no new one."""
    from realtime.services.push import MAX_SUBSCRIPTIONS

    gateway = make_server(env=PUSH_ENV)
    subs = [push_service.subscription(f"many-{i}") for i in range(MAX_SUBSCRIPTIONS + 1)]
    for sub in subs[:MAX_SUBSCRIPTIONS]:
        await subscribe(gateway, "p-adam", sub.to_json())
    again = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", subs[0].to_json(),
                        bearer=token("p-adam"))
    assert again.status == 200
    over = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", subs[-1].to_json(),
                       bearer=token("p-adam"))
    assert over.status == 413, over.body
    assert over.body["error"]["code"] == "too_large"
    assert "Mes appareils" in over.body["error"]["message"]
    # another person is not affected
    await subscribe(gateway, "p-durand", push_service.subscription("durand").to_json())
