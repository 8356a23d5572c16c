"""A school announcement to 2,000 offline families: how long until every push is sent? (issue 12)

    .venv/bin/python -m load.push [--families 2000] [--live 100]

Seeds one school of the synthetic district (80 classes of 25 students) into a temporary SQLite
store, registers one push subscription for each of `--families` guardians (endpoints on the
local push service of tests/support/push_service.py, which checks each push's VAPID signature
and decrypts it), and starts `liaison serve` (the job workers inside it, the embedded job
table). `--live` other guardians stay connected. The director then publishes an announcement
to the school: the figure is the time from the publish until the push service has accepted
every push. Meanwhile a teacher publishes class posts to the connected families, before and
during the push storm: their live delivery latency shows whether the pushes slow live fan-out.
Bounded: one school, a few thousand pushes; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from auth.tokens import issue
from persistence.push_sqlite import SQLitePushStore
from persistence.push_store import PushSubscription
from school.district import guardian_ids
from tests.support.push_service import PushService, start_push_service

REPO = Path(__file__).resolve().parents[1]
SECRET = "push-bench-secret-0123456789abcdef0123456789"
API_KEY = "push-bench-api-key-0123456789abcdef"
CLASSES, STUDENTS = 80, 25


def token(user: str) -> str:
    return issue(SECRET.encode(), user, 3600)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "realtime.process.cli", *args], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def http(method: str, url: str, body: object) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


async def subscribe_all(path: str, service: PushService, users: list[str]) -> None:
    store = SQLitePushStore(path)
    await store.open()
    try:
        for user in users:
            sub = service.subscription(user)
            keys = sub.to_json()["keys"]
            await store.add_subscription(PushSubscription("ps-" + user, user, None, sub.endpoint, keys["p256dh"],
                                                          keys["auth"], time.time()))
    finally:
        await store.close()


async def open_client(url: str, user: str) -> ClientConnection:
    ws = await connect(url, subprotocols=["liaison.v1.json"], max_size=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"id": 1, "op": "connect", "token": token(user)}))
    while "id" not in json.loads(await ws.recv()):
        pass
    return ws


async def listen(ws: ClientConnection, latencies: list[float]) -> None:
    async for frame in ws:
        body = json.loads(frame)
        text = str(body.get("message", {}).get("data", {}).get("text", ""))
        if body.get("push") == "message" and text.startswith("live "):
            latencies.append(time.time() - float(text.split()[1]))


async def posts(teacher: ClientConnection, count: int, rate: float) -> None:
    for i in range(count):
        await teacher.send(json.dumps({"id": 100 + i, "op": "publish", "channel": "class:sch-1-c1", "kind": "post",
                                       "data": {"text": f"live {time.time():.6f}"}}))
        await asyncio.sleep(1 / rate)


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"deliveries": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


async def measure(port: int, service: PushService, families: int, live_users: list[str]) -> dict[str, object]:
    url = f"ws://127.0.0.1:{port}/ws"
    live = [await open_client(url, user) for user in live_users]
    before: list[float] = []
    during: list[float] = []
    readers = [asyncio.create_task(listen(ws, before)) for ws in live]
    teacher = await open_client(url, "t-1-1")
    director = await open_client(url, "d-1")
    await posts(teacher, 10, 10.0)
    await asyncio.sleep(1.0)
    for task in readers:
        task.cancel()
    readers = [asyncio.create_task(listen(ws, during)) for ws in live]
    started = time.time()
    await director.send(json.dumps({"id": 2, "op": "publish", "channel": "school:sch-1", "kind": "announcement",
                                    "data": {"text": "Sortie scolaire annulée demain"}}))
    storm = asyncio.create_task(posts(teacher, 30, 10.0))
    deadline = time.monotonic() + 600
    while len(service.pushes) < families and time.monotonic() < deadline:  # noqa: ASYNC110 (another thread)
        await asyncio.sleep(0.05)
    elapsed = time.time() - started
    await storm
    await asyncio.sleep(1.0)
    for task in readers:
        task.cancel()
    for ws in [*live, teacher, director]:
        await ws.close()
    return {"families": families, "pushes_sent": len(service.pushes), "refused": len(service.refused),
            "seconds_to_all_pushes": round(elapsed, 2),
            "pushes_per_second": round(len(service.pushes) / elapsed, 1),
            "live_connections": len(live), "live_before": summary(before), "live_during_pushes": summary(during)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=2000)
    parser.add_argument("--live", type=int, default=100)
    args = parser.parse_args()
    guardians = [g for c in range(1, CLASSES + 1) for g in guardian_ids(1, c, STUDENTS)]
    class_one = set(guardian_ids(1, 1, STUDENTS))
    live_users = [g for g in guardians if g in class_one][: args.live]
    offline = [g for g in guardians if g not in class_one][: args.families]
    service = start_push_service()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="liaison-push-bench-") as work:
        path = f"{work}/liaison.db"
        env = {**os.environ, "LIAISON_STORE_URL": f"sqlite:///{path}", "LIAISON_JWT_SECRET": SECRET,
               "LIAISON_API_KEY": API_KEY, "LIAISON_PUSH_ALLOWED_HOSTS": "127.0.0.1",
               "LIAISON_LOG_LEVEL": "warning",
               "LIAISON_PUBLISHES_PER_SECOND": "1000", "LIAISON_PUBLISH_BURST": "1000", "LIAISON_REDIS_URL": ""}
        run(["seed-district", "--schools", "1", "--classes", str(CLASSES), "--students", str(STUDENTS)], env)
        asyncio.run(subscribe_all(path, service, offline))
        server = subprocess.Popen([sys.executable, "-m", "realtime.process.cli", "serve", "--host", "127.0.0.1",
                                   "--port", str(port)], cwd=REPO, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.1)
            http("PUT", f"http://127.0.0.1:{port}/api/v1/admin/schools/sch-1/quiet-hours",
                 {"start": "00:00", "end": "00:00", "weekends": False, "timezone": "Europe/Paris"})
            print(json.dumps(asyncio.run(measure(port, service, len(offline), live_users)), indent=2))
        finally:
            server.terminate()
            server.wait(timeout=20)
            service.stop()


if __name__ == "__main__":
    main()
