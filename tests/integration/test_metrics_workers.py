"""`/metrics` under `liaison serve --workers 2`: one answer for the whole port, whichever worker
the kernel hands the scrape to (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.integration.conftest import FAST, token
from tests.support.gateway_server import free_port
from tests.support.redis_servers import RedisServer
from tests.support.waiting import wait_for
from tests.support.ws_client import UNIT, Client

pytestmark = pytest.mark.integration

COUNTERS = ("liaison_messages_published_total", "liaison_messages_delivered_total")
# up to 64 connections of 3 parents: per-user limits are not under test here
ROOMY = {"LIAISON_USER_CONNECTIONS": "1000", "LIAISON_USER_COMMANDS_PER_SECOND": "10000",
         "LIAISON_USER_COMMAND_BURST": "10000"}


def scrape(port: int) -> dict[str, float]:
    """One scrape (a new TCP connection: the kernel picks the worker): unlabelled samples by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=UNIT) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            samples[name] = float(value)
    return samples


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def connections_by_worker(metrics_dir: Path, pids: list[int]) -> dict[int, float]:
    """Each worker's own `liaison_connections`, read from its files in the multiprocess directory."""
    out = {}
    for pid in pids:
        files = [str(f) for f in metrics_dir.glob(f"*_{pid}.db")]
        values = [s.value for m in MultiProcessCollector.merge(files) for s in m.samples
                  if s.name == "liaison_connections"]
        out[pid] = sum(values)
    return out


async def test_metrics_add_up_over_workers_and_never_go_back(tmp_path: Path, redis_server: RedisServer):
    port = free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, **FAST, **ROOMY, "LIAISON_REDIS_URL": redis_server.url, "TMPDIR": str(temp),
           "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    supervisor = subprocess.Popen(  # noqa: ASYNC220 (starting a process does not block)
        [sys.executable, "-m", "realtime.process.cli", "serve", "--demo", "--port", str(port), "--workers", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"ws://127.0.0.1:{port}/ws"
    clients: list[Client] = []
    history: list[dict[str, float]] = []

    def check_scrape() -> dict[str, float]:
        """Scrape once; no counter may be below what an earlier scrape showed."""
        samples = scrape(port)
        if history:
            for name in COUNTERS:
                assert samples[name] >= history[-1][name], f"{name} went back: {history[-1][name]} -> {samples}"
        history.append(samples)
        return samples

    def answers() -> bool:
        try:
            scrape(port)
            return True
        except OSError:
            return False

    try:
        await wait_for(lambda: len(children(supervisor.pid)) == 2 and len(list(temp.glob("*/*.db"))) >= 2,
                       timeout=UNIT * 2, what="two workers with their metric files")
        (metrics_dir,) = list(temp.iterdir())  # the supervisor's fresh multiprocess directory
        pids = children(supervisor.pid)
        await wait_for(answers, timeout=UNIT * 2, what="/metrics answers")

        async def connect(user: str) -> Client:
            client = await Client.open(url)
            await client.ok("connect", token=token(user))
            clients.append(client)
            return client

        teacher = await connect("t-martin")
        parents = ["p-lea-mere", "p-lea-pere", "p-durand"]
        while min(connections_by_worker(metrics_dir, pids).values()) < 1:  # until both workers hold some
            assert len(clients) < 64, "the kernel gave 64 connections to one worker"
            await connect(parents[len(clients) % 3])
        by_worker = connections_by_worker(metrics_dir, pids)
        assert sum(by_worker.values()) == len(clients) and all(v >= 1 for v in by_worker.values())

        published = 0
        for round_ in range(10):
            reply = await teacher.call("publish", channel="class:cp-a", kind="post", data={"text": f"m{round_}"})
            assert "ok" in reply
            published += 1
            for client in clients[1:]:
                await client.messages(1)
            for _ in range(3):
                samples = check_scrape()
                assert samples["liaison_connections"] == len(clients), "a scrape saw one worker only"
        final = check_scrape()
        assert final["liaison_messages_published_total"] == published
        assert final["liaison_messages_delivered_total"] >= published * (len(clients) - 1)
        assert final["liaison_fanout_latency_seconds_count"] >= published

        # A worker killed: the supervisor marks it dead (its connections leave the gauge) and
        # restarts it; its counters stay in the sums.
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        lost = int(by_worker[victim])
        await wait_for(lambda: sum(c.ws.close_code is not None for c in clients) == lost,
                       what="the killed worker's clients closed")
        survivors = [c for c in clients if c.ws.close_code is None]

        def survivors_counted() -> bool:
            try:
                return check_scrape()["liaison_connections"] == len(survivors)
            except ConnectionResetError:  # a scrape queued on the killed worker's socket: ask again
                return False

        await wait_for(survivors_counted, timeout=UNIT * 2,
                       what="the killed worker's connections gone from the gauge")
        assert history[-1]["liaison_connections"] == len(survivors)
        assert history[-1]["liaison_messages_published_total"] == published
        assert metrics_dir.exists()
    finally:
        for client in clients:
            await client.close()
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=UNIT * 3)
    assert code == 0
    assert not list(temp.iterdir()), "the supervisor left its multiprocess directory behind"
