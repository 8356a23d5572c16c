"""Real `redis-server` processes for tests: standalone or a 3-master cluster, on free ports.

Every server runs from a temporary directory, without persistence (`--save ""`,
`--appendonly no`), bound to 127.0.0.1, and is stopped by the test that started it.
`stop()` and `start()` keep the port, so a test can restart a server under a client.
Readiness is a condition polled against a deadline (`waiting.UNIT`), never a sleep.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from tests.support.waiting import UNIT, wait_until

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000
CLUSTER_NODE_TIMEOUT_MS = 3000


def redis_missing() -> str | None:
    """Why real-Redis tests cannot run here, or None when they can."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        return "redis-server and redis-cli are needed (make system-deps installs them)"
    return None


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(cluster: bool = False) -> int:
    """A port free now on 127.0.0.1 (and its cluster bus port, for a cluster node)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not cluster:
            return port
        bus = port + CLUSTER_BUS_OFFSET
        if bus < 65536 and _port_is_free(bus):
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class RedisServer:
    """One `redis-server` process; `stop()`/`start()` keep its port and directory."""

    port: int
    workdir: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"redis-{self.port}.log"

    def client(self) -> redis.Redis:
        """A synchronous client for checks; use it in a `with` block."""
        return redis.Redis(port=self.port, socket_timeout=UNIT, socket_connect_timeout=UNIT)

    def start(self) -> None:
        assert REDIS_SERVER is not None, redis_missing()
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.workdir), "--logfile", str(self.log_path), *self.extra_args]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.answers() or self.process is None or self.process.poll() is not None,
                   UNIT, f"redis-server on port {self.port} answers")
        if not self.answers():
            self.stop()
            raise RuntimeError(f"redis-server on port {self.port} did not start:\n{self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        """Stop the process (SIGTERM, or SIGKILL for a crash) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            process.send_signal(signal.SIGCONT)  # a paused server handles SIGTERM once resumed
            try:
                process.wait(timeout=UNIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as r:
                return bool(r.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _start_on_a_free_port(make: Callable[[], RedisServer], attempts: int = 3) -> RedisServer:
    """Start `make()`; a port taken between choosing and binding gets another try."""
    for attempt in range(attempts):
        server = make()
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_redis(workdir: Path) -> RedisServer:
    """Start a standalone server on a free port."""
    return _start_on_a_free_port(lambda: RedisServer(free_port(), workdir))


@dataclass
class RedisClusterServers:
    """Redis Cluster nodes, all masters (no replicas), slots spread evenly."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """The `make_broker` URL: the cluster scheme and one seed node."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        self.wait_ok()

    def stop(self, kill: bool = False) -> None:
        for node in self.nodes:
            node.stop(kill=kill)

    def restart(self) -> None:
        """Restart every node on its port; they rejoin from their saved cluster config."""
        self.stop()
        self.start()

    def restart_node(self, node: RedisServer) -> None:
        node.restart()
        self.wait_ok()

    def wait_ok(self) -> None:
        wait_until(self._all_ok, UNIT * 4, "cluster_state:ok on every node")

    def _all_ok(self) -> bool:
        for node in self.nodes:
            try:
                with node.client() as r:
                    info = r.execute_command("CLUSTER INFO")
            except (redis.ConnectionError, redis.TimeoutError):
                return False
            if (info.get("cluster_state") != "ok"
                    or info.get("cluster_known_nodes") != str(len(self.nodes))
                    or info.get("cluster_slots_ok") != "16384"):
                return False
        return True

    def owner(self, channel: str) -> RedisServer:
        """The node that owns the hash slot of `channel` (a full Redis channel name)."""
        slot = key_slot(channel.encode())
        with self.nodes[0].client() as r:
            ranges = r.execute_command("CLUSTER SLOTS")
        for start, end, primary, *_ in ranges:
            if start <= slot <= end:
                port = int(primary[1])
                return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"slot {slot} is not covered")

    def move_slot(self, channel: str, to: RedisServer) -> None:
        """Give the (empty) hash slot of `channel` to node `to`, as a resharding would."""
        slot = key_slot(channel.encode())
        with to.client() as r:
            node_id = r.execute_command("CLUSTER MYID")
        node_id = node_id.decode() if isinstance(node_id, bytes) else node_id
        for node in [to, *(n for n in self.nodes if n is not to)]:
            with node.client() as r:
                r.execute_command("CLUSTER SETSLOT", slot, "NODE", node_id)
        wait_until(lambda: self.owner(channel) is to, UNIT, f"slot {slot} moved")
        self.wait_ok()


def _cluster_node(workdir: Path) -> RedisServer:
    port = free_port(cluster=True)
    return RedisServer(port, workdir, ("--cluster-enabled", "yes",
                                       "--cluster-config-file", str(workdir / f"nodes-{port}.conf"),
                                       "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS)))


def start_cluster(workdir: Path, masters: int = 3) -> RedisClusterServers:
    """Start `masters` cluster-enabled servers on free ports and join them into one cluster."""
    assert REDIS_CLI is not None, redis_missing()
    cluster = RedisClusterServers([])
    try:
        for _ in range(masters):
            cluster.nodes.append(_start_on_a_free_port(lambda: _cluster_node(workdir)))
        subprocess.run([REDIS_CLI, "--cluster", "create",
                        *(f"127.0.0.1:{node.port}" for node in cluster.nodes),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=UNIT * 4)
        cluster.wait_ok()
    except BaseException:
        cluster.stop()
        raise
    return cluster
