"""Start a real `liaison serve` process on a free port, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.ws_client import UNIT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=UNIT * 3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_gateway(workdir: Path, env: dict[str, str] | None = None, demo: bool = True,
                  port: int | None = None) -> GatewayProcess:
    port = port or free_port()
    full_env = {**os.environ, "LIAISON_STORE_URL": f"sqlite:///{workdir / 'liaison.db'}",
                "LIAISON_LOG_LEVEL": "info", **(env or {})}
    args = [sys.executable, "-m", "realtime.process.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if demo:
        args.append("--demo")
    log_path = workdir / f"gateway-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=workdir, env=full_env, stdout=log, stderr=log)
    gateway = GatewayProcess(port, process, log_path)
    deadline = time.monotonic() + UNIT * 4
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{gateway.logs()}")
        try:
            with urllib.request.urlopen(gateway.http + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return gateway
        except OSError:
            time.sleep(0.05)
    gateway.stop()
    raise RuntimeError(f"gateway did not answer /healthz in time:\n{gateway.logs()}")


@contextmanager
def gateways_running(root: Path, count: int, env: dict[str, str]) -> Iterator[list[GatewayProcess]]:
    """`count` gateways with the same settings, each in its own folder `root/gw<i>`; all stopped
    on leaving (those started so far, if one fails to start)."""
    started: list[GatewayProcess] = []
    try:
        for i in range(count):
            workdir = root / f"gw{i}"
            workdir.mkdir()
            started.append(start_gateway(workdir, env=env))
        yield started
    finally:
        for gateway in started:
            gateway.stop()
