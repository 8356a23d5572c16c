"""Per-user limits across gateway processes (issue 10, item 5): two real `liaison serve`
over one real Redis. Limits and windows are made small through the environment."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import FAST, token
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.redis_servers import RedisServer
from tests.support.ws_client import UNIT, Client

API_KEY = "k" * 32
TwoGateways = Callable[[dict[str, str]], tuple[GatewayProcess, GatewayProcess]]


@pytest.fixture
def two_gateways(tmp_path: Path, redis_server: RedisServer) -> Iterator[TwoGateways]:
    started: list[GatewayProcess] = []

    def make(env: dict[str, str]) -> tuple[GatewayProcess, GatewayProcess]:
        full = {**FAST, "LIAISON_REDIS_URL": redis_server.url, "LIAISON_PRESENCE_PERIOD": "0.2",
                "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 'shared.db'}", **env}
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            started.append(start_gateway(tmp_path / name, env=full))
        return started[0], started[1]

    yield make
    for gateway in started:
        gateway.stop()


async def connect(gateway: GatewayProcess, user: str) -> Client:
    client = await Client.open(gateway.ws)
    await client.ok("connect", token=token(user))
    return client


async def refused_connect(gateway: GatewayProcess, user: str) -> dict[str, Any]:
    """A `connect` that must be refused: its error, after checking the close with 4429."""
    client = await Client.open(gateway.ws)
    try:
        reply = await client.call("connect", token=token(user))
        assert "error" in reply, f"connect should have been refused: {reply}"
        assert await client.closed() == 4429
        return reply["error"]  # type: ignore[no-any-return]
    finally:
        await client.close()


async def connect_when_allowed(gateway: GatewayProcess, user: str, attempts: int = 200) -> Client:
    """Connect, trying again while refused with rate_limited (bounded)."""
    for _ in range(attempts):
        client = await Client.open(gateway.ws)
        reply = await client.call("connect", token=token(user))
        if "ok" in reply:
            return client
        assert reply["error"]["code"] == "rate_limited"
        await client.closed()
        await client.close()
        await asyncio.sleep(0.05)  # between two attempts; the condition is the accepted connect
    raise AssertionError(f"{user} still refused after {attempts} attempts")


async def test_the_eleventh_connection_of_a_user_across_two_gateways_is_refused(two_gateways: TwoGateways):
    first, second = two_gateways({})
    on_first = [await connect(first, "p-durand") for _ in range(5)]
    on_second = [await connect(second, "p-durand") for _ in range(5)]
    try:
        error = await refused_connect(first, "p-durand")
        assert error["code"] == "rate_limited" and error["retry_after"] >= 1
        assert "10 connections" in error["message"]
        other = await connect(first, "p-adam")  # another user is not affected
        await other.close()
        await on_second.pop().close()  # one place comes free, on the other gateway
        on_first.append(await connect_when_allowed(first, "p-durand"))
        assert (await refused_connect(second, "p-durand"))["code"] == "rate_limited"
        # a gateway that dies does not keep its places: unrefreshed, they expire (4 x 0.2 s)
        second.stop(sig=9)
        for _ in on_second:
            on_first.append(await connect_when_allowed(first, "p-durand"))
        assert len(on_first) == 10
        assert (await refused_connect(first, "p-durand"))["code"] == "rate_limited"
    finally:
        for client in on_first + on_second:
            await client.close()


async def test_commands_over_the_user_rate_across_two_gateways_are_refused(two_gateways: TwoGateways):
    # 12 at once, then one every 10 s, for the user over all their connections
    first, second = two_gateways({"LIAISON_USER_COMMANDS_PER_SECOND": "0.1", "LIAISON_USER_COMMAND_BURST": "12"})
    one, two = await connect(first, "p-lea-mere"), await connect(second, "p-lea-mere")  # 2 commands
    other = await connect(second, "p-lea-pere")
    try:
        answered = [await (one if i % 2 else two).call("ping") for i in range(10)]
        assert all("ok" in reply for reply in answered)
        # each gateway answers from its own bucket and shares its count every 50 ms
        # (channels.limits.LocalFirst): soon both connections are refused, whichever gateway
        passed = 12
        for client in (one, two):
            for _ in range(20):  # bounded: a few beyond the burst may pass before the counts meet
                reply = await client.call("ping")
                if "error" in reply:
                    break
                passed += 1
            assert reply["error"]["code"] == "rate_limited", reply
            assert 1 <= reply["error"]["retry_after"] <= 11
        assert passed <= 24  # at most one burst per gateway, not one per connection or unbounded
        reply = await two.call("publish", channel="chat:s-lea~t-martin", kind="chat", data={"text": "hi"})
        assert reply["error"]["code"] == "rate_limited"
        assert "ok" in await other.call("ping")  # the other parent has their own rate
    finally:
        for client in (one, two, other):
            await client.close()


async def test_after_4429_a_reconnect_is_refused_until_the_block_passes(two_gateways: TwoGateways):
    first, second = two_gateways({"LIAISON_USER_COMMANDS_PER_SECOND": "1", "LIAISON_USER_COMMAND_BURST": "5",
                                  "LIAISON_RATE_LIMIT_BLOCK": "2"})
    abuser = await connect(first, "p-durand")
    frames = [json.dumps({"id": 100 + i, "op": "ping"}) for i in range(20)]
    for frame in frames:  # 4 pass, 5 refused, the 6th refusal in a row closes
        await abuser.send_raw(frame)
    assert await abuser.closed() == 4429
    closed_at = time.monotonic()
    await abuser.close()
    error = await refused_connect(second, "p-durand")  # another gateway knows
    assert error["code"] == "rate_limited" and 1 <= error["retry_after"] <= 2
    again = await connect_when_allowed(second, "p-durand")
    assert time.monotonic() - closed_at >= 1.5  # not before the block passed (2 s, less our timing)
    assert "ok" in await again.call("ping")
    await again.close()


def get(url: str, bearer: str | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
    """GET: status, headers (names in lower case) and JSON body."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"} if bearer else {})
    try:
        with urllib.request.urlopen(request, timeout=UNIT) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, json.loads(exc.read())


async def test_http_requests_over_the_rate_get_429_with_retry_after(two_gateways: TwoGateways):
    first, second = two_gateways({"LIAISON_HTTP_PER_SECOND": "0.1", "LIAISON_HTTP_BURST": "3",
                                  "LIAISON_API_KEY": API_KEY, "LIAISON_API_KEY_PER_SECOND": "0.1",
                                  "LIAISON_API_KEY_BURST": "2"})
    unread = "/api/v1/me/unread"
    parent = token("p-durand")
    statuses = [(await asyncio.to_thread(get, gw.http + unread, parent))[0] for gw in (first, second, first)]
    assert statuses == [200, 200, 200]
    status, headers, body = await asyncio.to_thread(get, second.http + unread, parent)
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= 11
    assert body["error"]["code"] == "rate_limited" and body["error"]["retry_after"] == int(headers["retry-after"])
    assert (await asyncio.to_thread(get, first.http + unread, token("p-adam")))[0] == 200  # per user
    # without valid credentials: counted by address (guessing tokens is limited too)
    gateways = (first, second, first, second)
    statuses = [(await asyncio.to_thread(get, gw.http + unread, "wrong"))[0] for gw in gateways]
    assert statuses == [401, 401, 401, 429]
    # the API key has its own rate
    school = "/api/v1/admin/schools/ecole-jaures"
    statuses = [(await asyncio.to_thread(get, gw.http + school, API_KEY))[0] for gw in (first, second, first)]
    assert statuses == [200, 200, 429]
