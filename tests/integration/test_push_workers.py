"""`liaison worker` processes over Redis (issue 12): two workers share the jobs and send each
push once; a worker killed with SIGKILL mid-batch loses nothing — its leased jobs are taken
over when the lease runs out (XAUTOCLAIM) — and what it had sent is not sent again. What was
in flight at the kill (accepted by the push service, its answer not yet back) is sent again,
identical: same payload (channel, seq) and Topic, so the push service and the device's service
worker collapse the two.

The gateway runs with LIAISON_WORKERS_IN_SERVE=0: only the worker processes send.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FAST, token
from tests.integration.signin_helpers import acall, call
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.push_service import Push, PushService
from tests.support.redis_servers import RedisServer
from tests.support.waiting import UNIT, wait_for
from tests.support.ws_client import Client

API_KEY = "k" * 32
NEVER_QUIET = {"start": "00:00", "end": "00:00", "weekends": False, "timezone": "Europe/Paris"}
GUARDIANS = ["p-lea-mere", "p-lea-pere", "p-durand"]
MESSAGES = 30


@pytest.fixture
def env(tmp_path: Path, redis_server: RedisServer) -> dict[str, str]:
    return {**FAST, "LIAISON_REDIS_URL": redis_server.url,
            "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "LIAISON_API_KEY": API_KEY,
            "LIAISON_PUSH_ALLOWED_HOSTS": "127.0.0.1", "LIAISON_WORKERS_IN_SERVE": "0",
            "LIAISON_PUSH_TIMEOUT": "1", "LIAISON_JOB_LEASE": "2", "LIAISON_LOG_LEVEL": "info"}


@pytest.fixture
def workers(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "realtime.process.cli", "worker", "--demo"]
        with (tmp_path / f"worker-{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **env}, stdout=log, stderr=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=UNIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def setup(tmp_path: Path, env: dict[str, str], push_service: PushService) -> tuple[GatewayProcess, Client]:
    workdir = tmp_path / "gw"
    workdir.mkdir()
    gateway = start_gateway(workdir, env=env)
    answer = call(gateway.http, "PUT", "/api/v1/admin/schools/ecole-jaures/quiet-hours", NEVER_QUIET,
                  bearer=API_KEY)
    assert answer.status == 200, answer.body
    for user in GUARDIANS:
        for device in ("phone", "laptop"):
            sub = push_service.subscription(f"{user}.{device}")
            added = await acall(gateway.http, "POST", "/api/v1/me/push-subscriptions", sub.to_json(),
                                bearer=token(user))
            assert added.status == 201, added.body
    teacher = await Client.open(gateway.ws)
    await teacher.ok("connect", token=token("t-martin"))
    return gateway, teacher


async def post(teacher: Client, i: int) -> int:
    return int((await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": f"n°{i}"}))["seq"])


def received(push_service: PushService) -> collections.Counter[tuple[str, int]]:
    with push_service.lock:
        return collections.Counter((p.name, int(p.payload["seq"])) for p in push_service.pushes)


async def test_two_workers_over_redis_send_each_push_once(tmp_path: Path, env: dict[str, str],
                                                          push_service: PushService, workers) -> None:
    gateway, teacher = await setup(tmp_path, env, push_service)
    push_service.delay = 0.2  # long enough a batch for both workers to take a share
    try:
        workers()
        workers()
        seqs = [await post(teacher, i) for i in range(MESSAGES)]
        expected = {(f"{u}.{d}", s) for u in GUARDIANS for d in ("phone", "laptop") for s in seqs}
        await wait_for(lambda: set(received(push_service)) >= expected, timeout=UNIT * 4, what="every push")
        counts = received(push_service)
        assert {k: n for k, n in counts.items() if n > 1} == {}, "a push was sent twice"
        assert set(counts) == expected
        assert push_service.refused == []
        for n in range(2):
            log = await asyncio.to_thread((tmp_path / f"worker-{n}.log").read_text)
            assert '"push_sent"' in log, f"worker {n} sent nothing: both take a share"
    finally:
        await teacher.close()
        gateway.stop()


async def test_a_worker_killed_mid_batch_loses_nothing_and_resends_nothing_it_had_finished(
        tmp_path: Path, env: dict[str, str], push_service: PushService, workers) -> None:
    gateway, teacher = await setup(tmp_path, env, push_service)
    # the service answers a while after accepting a push, so that the kill surely comes while
    # some pushes are accepted but their answers not yet back: the at-least-once window
    push_service.answer_delay = 0.3
    try:
        first = workers()
        seqs = [await post(teacher, i) for i in range(MESSAGES)]
        expected = {(f"{u}.{d}", s) for u in GUARDIANS for d in ("phone", "laptop") for s in seqs}
        await wait_for(lambda: len(push_service.answered) >= 20 and len(received(push_service)) > len(
            push_service.answered), timeout=UNIT * 2, what="pushes answered, and others accepted but unanswered")
        first.send_signal(signal.SIGKILL)
        first.wait()
        before_kill = received(push_service)
        assert len(before_kill) < len(expected), "the kill came mid-batch"
        workers()  # the restart: takes over the dead worker's leased jobs after LIAISON_JOB_LEASE
        await wait_for(lambda: set(received(push_service)) >= expected, timeout=UNIT * 4, what="every push")
        counts = received(push_service)
        assert set(counts) == expected, "nothing lost"
        twice = {k for k, n in counts.items() if n > 1}
        # a push the service had accepted before the kill and whose answer the dead worker never
        # recorded (in flight at the kill) can be sent once more: at-least-once, never more
        assert all(counts[k] == 2 for k in twice)
        assert 0 < len(twice) <= 32, "only pushes in flight at the kill (the worker's concurrency)"
        assert all(counts[k] == 1 for k in before_kill if k not in twice)
        # a repeat announces the same thing with the same Topic as its first copy, so the push
        # service (Topic) and the device's service worker (channel, seq) collapse the two
        copies: dict[tuple[str, int], list[Push]] = collections.defaultdict(list)
        with push_service.lock:
            for p in push_service.pushes:
                copies[(p.name, int(p.payload["seq"]))].append(p)
        for k in twice:
            original, repeat = copies[k]
            assert repeat.payload == original.payload, f"{k}: the repeat announces something else"
            assert repeat.topic is not None and repeat.topic == original.topic, f"{k}: another Topic"
    finally:
        await teacher.close()
        gateway.stop()
