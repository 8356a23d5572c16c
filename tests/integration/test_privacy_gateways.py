"""An erasure reaches every gateway live (issue 15): two gateway processes over one Redis and
one store; the admin API of the first erases a mother connected to the second. There, her
connection closes at once and the teacher's open connection receives her messages emptied
(`update` pushes), while a reconnecting client's recovery (`updated_since`) sees them emptied
too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FAST, token
from tests.integration.test_http_api import KEY, Api
from tests.support.gateway_server import GatewayProcess, gateways_running
from tests.support.redis_servers import RedisServer, redis_missing, start_redis
from tests.support.ws_client import Client

pytestmark = pytest.mark.skipif(redis_missing() is not None, reason=str(redis_missing()))
TEXTS = ("Hortense a de la fièvre ce matin", "Elle reviendra lundi")


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    redis: RedisServer = start_redis(tmp_path / "redis")
    env = {**FAST, "LIAISON_REDIS_URL": redis.url, "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
           "LIAISON_API_KEY": KEY}
    try:
        with gateways_running(tmp_path, 2, env) as started:
            yield started
    finally:
        redis.stop()


async def test_an_erasure_on_one_gateway_reaches_the_other_live(two_gateways: list[GatewayProcess]) -> None:
    first, second = two_gateways
    mother = await Client.open(second.ws)
    teacher = await Client.open(second.ws)
    try:
        await mother.ok("connect", token=token("p-lea-mere"))
        channel = (await mother.ok("open_chat", student="s-lea"))["channel"]
        connected = await teacher.ok("connect", token=token("t-martin"))
        assert channel in [c["channel"] for c in connected["channels"]]
        seqs = [(await mother.ok("publish", channel=channel, kind="chat", data={"text": t}))["seq"] for t in TEXTS]
        await teacher.messages(len(TEXTS))

        erased = Api(first.http).call("POST", "/api/v1/admin/people/p-lea-mere/erase", {"dry_run": False})
        assert erased.status == 200 and erased.body["counts"]["messages"] == len(TEXTS)
        assert await mother.closed() is not None, "her connection on the other gateway ends"
        updates = [await teacher.push("update") for _ in TEXTS]
        assert [(u["message"]["seq"], u["message"]["deleted"], u["message"]["from"]["id"]) for u in updates] == [
            (seq, True, "") for seq in seqs]

        late = await Client.open(second.ws)
        try:
            recovered = await late.ok("connect", token=token("t-martin"), since={channel: 0})
            [mine] = [c for c in recovered["channels"] if c["channel"] == channel]
            assert [(m["seq"], m["data"], m["from"]["name"]) for m in mine["messages"]] == [
                (seq, {}, "") for seq in seqs]
        finally:
            await late.close()
    finally:
        await teacher.close()
        await mother.close()
