"""Scheduled posts (issue 12): `publish` with `at` is published once at its time, across two
gateways over a real Redis and one store, after the gateway that scheduled it is stopped;
recovery with `since` stays gap-free. Real `liaison serve` processes, real WebSocket clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.integration.conftest import FAST, token
from tests.support.gateway_server import GatewayProcess, gateways_running, start_gateway
from tests.support.redis_servers import RedisServer
from tests.support.waiting import UNIT
from tests.support.ws_client import Client

CLASS = "class:cp-a"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def env(tmp_path: Path, redis_server: RedisServer) -> dict[str, str]:
    store = tmp_path / "shared.db"
    return {**FAST, "LIAISON_REDIS_URL": redis_server.url, "LIAISON_STORE_URL": f"sqlite:///{store}",
            "LIAISON_SCHEDULE_POLL": "0.1"}


@pytest.fixture
def gateways(tmp_path: Path, env: dict[str, str]) -> Iterator[list[GatewayProcess]]:
    with gateways_running(tmp_path, 2, env) as started:
        yield started


async def connect(gateway: GatewayProcess, user: str, **params: object) -> Client:
    client = await Client.open(gateway.ws)
    client.connected = await client.ok("connect", token=token(user), **params)
    return client


async def test_a_scheduled_post_is_published_once_by_another_gateway_after_a_restart(
        tmp_path: Path, env: dict[str, str], gateways: list[GatewayProcess]) -> None:
    first, second = gateways
    teacher = await connect(first, "t-martin")
    parent = await connect(second, "p-lea-mere")
    opened = [teacher, parent]
    try:
        now_seq = (await teacher.ok("publish", channel=CLASS, kind="post", data={"text": "tout de suite"}))["seq"]
        assert [m["seq"] for m in await parent.messages(1)] == [now_seq]

        at = int((time.time() + UNIT) * 1000)  # soon, but after the first gateway is gone
        reply = await teacher.ok("publish", channel=CLASS, kind="post", data={"text": "plus tard"}, at=at,
                                 key="k-plus-tard")
        assert set(reply) == {"scheduled", "at"} and reply["at"] == at
        again = await teacher.ok("publish", channel=CLASS, kind="post", data={"text": "plus tard"}, at=at,
                                 key="k-plus-tard")
        assert again["scheduled"] == reply["scheduled"]  # a retried scheduling schedules nothing new
        cancelled = await teacher.ok("publish", channel=CLASS, kind="post", data={"text": "annulé"}, at=at)
        listed = await teacher.ok("scheduled")
        assert sorted(p["id"] for p in listed["posts"]) == sorted([reply["scheduled"], cancelled["scheduled"]])
        assert await teacher.ok("cancel_scheduled", scheduled=cancelled["scheduled"]) == {}
        assert await teacher.error("cancel_scheduled", scheduled=cancelled["scheduled"]) == "not_found"
        assert await teacher.error("cancel_scheduled", scheduled="nope") == "not_found"
        assert parent.no_push_now()  # invisible until its time
        history = await parent.ok("history", channel=CLASS)
        assert [m["data"]["text"] for m in history["messages"]] == ["tout de suite"]

        await teacher.close()
        first.stop()  # the gateway that scheduled it is gone
        assert first.process.poll() is not None

        (pushed,) = await parent.messages(1, timeout=UNIT * 3)
        assert pushed["data"] == {"text": "plus tard"} and pushed["seq"] == now_seq + 1
        assert pushed["from"]["id"] == "t-martin"
        assert pushed["ts"] >= at

        restarted = start_gateway(tmp_path / "gw0", env=env)  # the first one again, on the same store
        gateways.append(restarted)
        teacher = await connect(restarted, "t-martin")
        opened.append(teacher)
        assert (await teacher.ok("scheduled"))["posts"] == []
        later = await teacher.ok("publish", channel=CLASS, kind="post", data={"text": "après"})
        assert later["seq"] == now_seq + 2
        assert [m["seq"] for m in await parent.messages(1)] == [now_seq + 2]  # no second copy in between
        await parent.ok("ping")
        assert parent.no_push_now()

        recovering = await connect(restarted, "p-durand", since={CLASS: 0})
        opened.append(recovering)
        (state,) = [c for c in recovering.connected["channels"] if c["channel"] == CLASS]
        assert [m["seq"] for m in state["messages"]] == [now_seq, now_seq + 1, now_seq + 2]
        assert [m["data"]["text"] for m in state["messages"]] == ["tout de suite", "plus tard", "après"]
        assert state["complete"] is True
    finally:
        for client in opened:
            await client.close()


async def test_scheduling_refusals(gateways: list[GatewayProcess]) -> None:
    teacher = await connect(gateways[0], "t-martin")
    parent = await connect(gateways[0], "p-lea-mere")
    try:
        now_ms = int(time.time() * 1000)
        for at, says in [(now_ms - 1000, "in the past"), (now_ms + 400 * 86_400_000, "more than a year ahead"),
                         ("lundi", "ISO 8601"), (True, "milliseconds")]:
            reply = await teacher.call("publish", channel=CLASS, kind="post", data={"text": "x"}, at=at)
            assert reply["error"]["code"] == "bad_request" and says in reply["error"]["message"], reply
        # the ordinary checks come first: a guardian may not post in the class, even later
        refused = await parent.call("publish", channel=CLASS, kind="post", data={"text": "x"}, at=now_ms + 60_000)
        assert refused["error"]["code"] == "forbidden"
        bad = await teacher.call("publish", channel=CLASS, kind="post", data={}, at=now_ms + 60_000)
        assert bad["error"]["code"] == "bad_request"
        assert (await teacher.ok("scheduled"))["posts"] == []
        # an ISO time without offset is the school's time (Europe/Paris)
        day = datetime.now(PARIS).date() + timedelta(days=30)
        expected = int(datetime.combine(day, time_of_day(7, 30), PARIS).timestamp() * 1000)
        iso = await teacher.ok("publish", channel=CLASS, kind="post", data={"text": "iso"}, at=f"{day}T07:30")
        assert iso["at"] == expected
        assert await parent.error("cancel_scheduled", scheduled=iso["scheduled"]) == "not_found"  # not theirs
        (listed,) = (await teacher.ok("scheduled"))["posts"]
        assert listed == {"id": iso["scheduled"], "channel": CLASS, "kind": "post", "data": {"text": "iso"},
                          "at": expected}
    finally:
        await teacher.close()
        await parent.close()
