"""The processes a benchmark starts (Liaison gateways, the reference server, redis-server),
CPU pinning, and what /proc says about a process (RSS, CPU time).

Every process is started by this module, bound to 127.0.0.1, and stopped by its pid
(SIGTERM, then SIGKILL after a grace period). Nothing else is ever signalled.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- /proc --------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time spent by the whole machine, all CPUs (from /proc/stat), in seconds: subtracting
    what the measured processes used gives what others used (noise)."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass
class Usage:
    """RSS and CPU of a group of processes (a target's server side)."""

    pids: list[int]

    def rss_kib(self) -> int:
        return sum(rss_kib(pid) for pid in self.pids)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)


def own_cpu_seconds() -> float:
    return time.process_time()


# -- pinning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pinning:
    load: frozenset[int]
    servers: frozenset[int]

    @classmethod
    def split(cls) -> Pinning | None:
        """The first CPU for the load generator, the others for the servers; None with one CPU."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:]))

    def pin_self(self) -> None:
        os.sched_setaffinity(0, self.load)


def _pinned(args: list[str], cpus: Iterable[int] | None) -> list[str]:
    if cpus is None:
        return args
    taskset = shutil.which("taskset")
    if taskset is None:
        return args
    return [taskset, "-c", ",".join(str(c) for c in sorted(cpus)), *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# -- processes ----------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cpus: frozenset[int] | None = None
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(_pinned(self.args, self.cpus), cwd=REPO,
                                          env={**os.environ, **self.env}, stdout=log, stderr=log,
                                          stdin=subprocess.DEVNULL)
        if self.cpus is not None and shutil.which("taskset") is None:
            os.sched_setaffinity(self.popen.pid, self.cpus)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 8.0) -> None:
        popen, self.popen = self.popen, None
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout} s:\n{self.log_tail()}")


def start_redis(workdir: Path, cpus: frozenset[int] | None) -> tuple[Process, str]:
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is needed (make system-deps installs it)")
    port = free_port()
    proc = Process("redis-server", [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir),
                                    "--maxclients", "20000"],
                   workdir / f"redis-{port}.log", cpus=cpus)
    proc.start()
    proc.wait_until(lambda: _tcp_answers(port), 10)
    return proc, f"redis://127.0.0.1:{port}"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_liaison(workdir: Path, store_url: str, secret: str, redis_url: str | None, cpus: frozenset[int] | None,
                  log_level: str = "info", port: int | None = None, loop: str = "auto") -> tuple[Process, int]:
    port = port or free_port()
    env = {"LIAISON_JWT_SECRET": secret, "LIAISON_STORE_URL": store_url, "LIAISON_LOG_LEVEL": log_level,
           "LIAISON_LOOP": loop,
           # the benchmarks measure capacity: a few generated teachers publish for a whole school,
           # far above what the per-user limits let one person do (docs/security.md)
           "LIAISON_PUBLISHES_PER_SECOND": "100000", "LIAISON_PUBLISH_BURST": "100000",
           "LIAISON_USER_COMMANDS_PER_SECOND": "100000", "LIAISON_USER_COMMAND_BURST": "100000",
           "LIAISON_USER_CONNECTIONS": "100000",
           # the gateway as production runs it (Procfile: `web:` and `worker:` processes): the
           # notification workers are not in it. The district's 10,805 people are mostly not
           # connected, so every post means e-mail digest entries for its offline families: work
           # of the `liaison worker` processes, measured apart (docs/benchmarks.md, "Notifications")
           "LIAISON_WORKERS_IN_SERVE": "0"}
    if redis_url:
        env["LIAISON_REDIS_URL"] = redis_url
    else:
        env["LIAISON_REDIS_URL"] = ""
    proc = Process(f"liaison:{port}", [sys.executable, "-m", "realtime.process.cli", "serve",
                                       "--host", "127.0.0.1", "--port", str(port)],
                   workdir / f"liaison-{port}.log", env=env, cpus=cpus)
    proc.start()
    proc.wait_until(lambda: _healthy(port), 30)
    return proc, port


def start_reference(workdir: Path, redis_url: str | None, cpus: frozenset[int] | None) -> tuple[Process, int]:
    port = free_port()
    args = [sys.executable, "-m", "load.reference_server", "--port", str(port)]
    if redis_url:
        args += ["--redis", redis_url]
    proc = Process(f"reference:{port}", args, workdir / f"reference-{port}.log", cpus=cpus)
    proc.start()
    proc.wait_until(lambda: _tcp_answers(port), 15)
    return proc, port


def seed_district(store_url: str, schools: int, classes: int, students: int, log_path: Path) -> None:
    """`liaison seed-district` into the store (a subprocess, as a user would run it)."""
    args = [sys.executable, "-m", "realtime.process.cli", "seed-district", "--schools", str(schools),
            "--classes", str(classes), "--students", str(students)]
    with log_path.open("ab") as log:
        done = subprocess.run(args, cwd=REPO, env={**os.environ, "LIAISON_STORE_URL": store_url},
                              stdout=log, stderr=log, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seed-district failed ({done.returncode}); see {log_path}")


def stop_all(processes: Sequence[Process]) -> None:
    for proc in reversed(processes):
        proc.stop()
