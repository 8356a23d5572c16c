"""`liaison serve --workers N`: N gateway processes sharing one port (SO_REUSEPORT).

The parent starts N children running `liaison serve --reuse-port`, forwards
SIGTERM/SIGINT to them, and restarts one that dies (after a pause that grows if
it keeps dying). The kernel spreads new connections over the children; they
share messages through Redis, so several workers need `LIAISON_REDIS_URL`.

The children share a fresh `PROMETHEUS_MULTIPROC_DIR` (a temporary directory the parent
removes when it stops), so that `/metrics`, whichever child answers, shows the sums over all
of them; a child that dies is marked dead there before it is replaced.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

import structlog
from prometheus_client.multiprocess import mark_process_dead

from realtime.metrics import MULTIPROC_ENV

log = structlog.get_logger("liaison.workers")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes may bind to the same address as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def supervise(count: int, child_args: list[str]) -> int:
    """Run `count` children with `child_args` until SIGTERM/SIGINT; return the exit code."""
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    command = [sys.executable, "-m", "realtime.process.cli", *child_args]
    metrics_dir = tempfile.mkdtemp(prefix="liaison-metrics-")
    env = {**os.environ, MULTIPROC_ENV: metrics_dir}
    try:
        children = [subprocess.Popen(command, env=env) for _ in range(count)]
        pauses = [0.5] * count
        log.info("workers_started", count=count, pids=[c.pid for c in children])
        while not stopping:
            for i, child in enumerate(children):
                if child.poll() is not None and not stopping:
                    log.warning("worker_died", pid=child.pid, code=child.returncode, restart_in=pauses[i])
                    # its gauges leave the sums; its counters stay in them
                    mark_process_dead(child.pid, metrics_dir)  # type: ignore[no-untyped-call]
                    time.sleep(pauses[i])
                    pauses[i] = min(pauses[i] * 2, 30.0)
                    children[i] = subprocess.Popen(command, env=env)
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
