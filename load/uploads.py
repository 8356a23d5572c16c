"""Does uploading photos slow live delivery? (issue 13)

    .venv/bin/python -m load.uploads [--connections 300] [--uploaders 20] [--seconds 20]

Starts `liaison serve --demo` on a free port (its own temporary store), opens `--connections`
WebSockets of the class's families (several per person, the per-user limits raised), and has
the teacher publish class posts at `--rate` per second. Each post carries its send time; every
connection records when it arrives. Two phases of `--seconds` each: without uploads, then with
`--uploaders` clients each uploading a 5 MB photo (a fresh noise JPEG, re-encoded by the server
into three variants) again and again. It prints the fan-out latency (send → received, over all
deliveries: p50, p99, max) of each phase and the uploads done. Bounded: a few hundred
connections, not thousands, and it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from auth.tokens import issue
from realtime.config import DEMO_SECRET

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("p-lea-mere", "p-lea-pere", "p-durand")
UPLOADERS = ("p-lea-mere", "p-lea-pere", "p-durand", "p-adam", "t-martin", "t-nguyen", "d-bernard")


def token(user: str) -> str:
    return issue(DEMO_SECRET.encode(), user, 3600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def photo_5mb() -> bytes:
    """A noise JPEG of about 5 MB (noise does not compress: the worst case for the server)."""
    side = 1500
    while True:
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=92)
        if out.tell() >= 5_000_000:
            return out.getvalue()
        side += 150


async def upload(base: str, user: str, photo: str) -> float:
    """One upload by `curl` in its own process, so that the uploads' client work does not share
    this process (and its GIL) with the connections being measured."""
    started = time.monotonic()
    curl = await asyncio.create_subprocess_exec(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Authorization: Bearer {token(user)}",
        "-F", f"file=@{photo};type=image/jpeg", base + "/api/v1/uploads", stdout=asyncio.subprocess.PIPE)
    out, _ = await curl.communicate()
    if out != b"201":
        raise RuntimeError(f"upload answered {out!r}")
    return time.monotonic() - started


class Receiver:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.latencies: list[float] = []
        self.task = asyncio.create_task(self.read())

    async def read(self) -> None:
        async for frame in self.ws:
            obj = json.loads(frame)
            if obj.get("push") == "message":
                text = obj["message"]["data"].get("text", "")
                if text.startswith("bench "):
                    self.latencies.append(time.time() - float(text.split()[1]))


async def open_client(url: str, user: str) -> ClientConnection:
    ws = await connect(url, subprotocols=["liaison.v1.json"], max_size=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"id": 1, "op": "connect", "token": token(user)}))
    while "id" not in json.loads(await ws.recv()):
        pass
    return ws


async def phase(url: str, base: str, receivers: list[Receiver], seconds: float, rate: float,
                uploaders: int, photo: str) -> dict[str, object]:
    for r in receivers:
        r.latencies.clear()
    teacher = await open_client(url, "t-martin")
    stop = asyncio.Event()
    uploads: list[float] = []

    async def uploader(i: int) -> None:
        while not stop.is_set():
            uploads.append(await upload(base, UPLOADERS[i % len(UPLOADERS)], photo))

    tasks = [asyncio.create_task(uploader(i)) for i in range(uploaders)]
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        sent += 1
        await teacher.send(json.dumps({"id": sent + 1, "op": "publish", "channel": "class:cp-a", "kind": "post",
                                       "data": {"text": f"bench {time.time():.6f}"}}))
        await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
    await asyncio.sleep(2.0)  # the last posts arrive
    stop.set()
    await asyncio.gather(*tasks)
    await teacher.close()
    latencies = sorted(x for r in receivers for x in r.latencies)
    expected = sent * len(receivers)
    return {
        "posts": sent, "deliveries": len(latencies), "expected": expected,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "uploads": len(uploads),
        "upload_median_s": round(statistics.median(uploads), 2) if uploads else None,
    }


async def measure(args: argparse.Namespace, port: int, photo: str) -> dict[str, object]:
    base, url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    receivers = [Receiver(await open_client(url, FAMILIES[i % len(FAMILIES)])) for i in range(args.connections)]
    quiet = await phase(url, base, receivers, args.seconds, args.rate, 0, photo)
    busy = await phase(url, base, receivers, args.seconds, args.rate, args.uploaders, photo)
    for r in receivers:
        await r.ws.close()
    return {"connections": args.connections, "rate": args.rate, "uploaders": args.uploaders,
            "photo_bytes": args.photo_bytes, "without_uploads": quiet, "with_uploads": busy}


def serve(work: str, port: int) -> subprocess.Popen[bytes]:
    raised = dict.fromkeys(("LIAISON_USER_CONNECTIONS", "LIAISON_COMMANDS_PER_SECOND", "LIAISON_COMMAND_BURST",
                            "LIAISON_PUBLISHES_PER_SECOND", "LIAISON_PUBLISH_BURST", "LIAISON_HTTP_PER_SECOND",
                            "LIAISON_HTTP_BURST", "LIAISON_UPLOADS_PER_MINUTE"), "100000")
    env = {**os.environ, "LIAISON_STORE_URL": f"sqlite:///{work}/liaison.db", "LIAISON_LOG_LEVEL": "warning",
           **raised}
    server = subprocess.Popen([sys.executable, "-m", "realtime.process.cli", "serve", "--demo", "--host",
                               "127.0.0.1", "--port", str(port)], cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.terminate()
                raise
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--uploaders", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=10.0, help="class posts per second")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="liaison-uploads-bench-") as work:
        photo = Path(work) / "photo.jpg"
        photo.write_bytes(photo_5mb())
        server = serve(work, port)
        try:
            args.photo_bytes = photo.stat().st_size
            print(json.dumps(asyncio.run(measure(args, port, str(photo))), indent=2))
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
