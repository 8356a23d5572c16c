from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auth.tokens import issue
from realtime.config import DEMO_SECRET
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.push_service import PushService, start_push_service
from tests.support.redis_servers import RedisServer, redis_missing, start_redis
from tests.support.ws_client import Client

FAST = {"LIAISON_COMMANDS_PER_SECOND": "10000", "LIAISON_COMMAND_BURST": "10000"}


def token(user: str, ttl: int = 3600) -> str:
    return issue(DEMO_SECRET.encode(), user, ttl)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GatewayProcess]:
    # tests publish faster than a person: the rate limit has its own tests
    gateway = start_gateway(tmp_path, env=FAST)
    yield gateway
    gateway.stop()


@pytest.fixture(params=["json", "msgpack"])
def binary(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "msgpack")


@pytest.fixture
async def clients(server: GatewayProcess, binary: bool) -> AsyncIterator[Callable[..., Any]]:
    """`await clients("t-martin")`: a connected client of that user (both codecs)."""
    opened: list[Client] = []

    async def make(user: str | None = None, **connect: Any) -> Client:
        client = await Client.open(server.ws, binary=binary)
        opened.append(client)
        if user is not None:
            client.connected = await client.ok("connect", token=token(user), **connect)
        return client

    yield make
    for client in opened:
        await client.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """`make_server(env={...})`: a gateway with its own settings (and its own store)."""
    started: list[GatewayProcess] = []

    def make(env: dict[str, str] | None = None, demo: bool = True) -> GatewayProcess:
        workdir = tmp_path / f"gw{len(started)}"
        workdir.mkdir()
        gateway = start_gateway(workdir, env={**FAST, **(env or {})}, demo=demo)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone Redis of this test's own (skipped, with the reason, when none can start)."""
    missing = redis_missing()
    if missing:
        pytest.skip(missing)
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A local Web Push service (tests/support/push_service.py) that records what it receives."""
    service = start_push_service()
    yield service
    service.stop()
