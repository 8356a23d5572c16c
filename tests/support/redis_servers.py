"""Real `redis-server` processes for tests: standalone or a cluster (3 masters, with or
without a replica each), on free ports.

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
from typing import Any, cast

import redis
from redis.crc import key_slot

from tests.support.waiting import UNIT, wait_until

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000
CLUSTER_NODE_TIMEOUT_MS = 3000
# With replicas: a master is declared failed after this long, and a replica promoted soon
# after, so that a failover test takes seconds.
FAILOVER_NODE_TIMEOUT_MS = 1000


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
    """Redis Cluster nodes, slots spread evenly over the masters (and, with `replicas`,
    as many replicas per master)."""

    nodes: list[RedisServer]
    replicas: int = 0

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

    def running(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.process is not None]

    def _all_ok(self) -> bool:
        for node in self.running():
            try:
                with node.client() as r:
                    info = r.execute_command("CLUSTER INFO")
                    replication = r.info("replication")
            except (redis.ConnectionError, redis.TimeoutError):
                return False
            if (info.get("cluster_state") != "ok"
                    or info.get("cluster_known_nodes") != str(len(self.nodes))
                    or info.get("cluster_slots_ok") != "16384"):
                return False
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return False
        return True

    def masters(self) -> list[RedisServer]:
        """The nodes that own slots now, as a running node sees it."""
        ports = {int(cast(list[Any], primary)[1]) for _, _, primary, *_ in self._slots()}
        return [node for node in self.nodes if node.port in ports]

    def _slots(self) -> list[list[object]]:
        error: Exception = LookupError("no running node")
        for node in self.running():
            try:
                with node.client() as r:
                    return list(r.execute_command("CLUSTER SLOTS"))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                error = exc
        raise error

    def kill_master(self, master: RedisServer) -> None:
        """Kill a master (SIGKILL: a crash) and return once a replica owns its slots and
        the cluster is ok again: the failover."""
        assert self.replicas, "a failover needs a cluster with replicas"
        master.stop(kill=True)
        wait_until(lambda: master not in self.masters() and self._slots_covered(), UNIT * 4,
                   f"a replica of {master.port} promoted")
        wait_until(self._live_ok, UNIT * 2, "cluster_state:ok on every running node")

    def _slots_covered(self) -> bool:
        return sum(int(last) - int(first) + 1  # type: ignore[call-overload]
                   for first, last, *_ in self._slots()) == 16384

    def _live_ok(self) -> bool:
        for node in self.running():
            with node.client() as r:
                if r.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
        return True

    def owner(self, channel: str) -> RedisServer:
        """The node that owns the hash slot of `channel` (a full Redis channel name)."""
        slot = key_slot(channel.encode())
        for start, end, primary, *_ in self._slots():
            if int(start) <= slot <= int(end):  # type: ignore[call-overload]
                port = int(primary[1])  # type: ignore[index]
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


def _cluster_node(workdir: Path, node_timeout_ms: int) -> RedisServer:
    port = free_port(cluster=True)
    return RedisServer(port, workdir, ("--cluster-enabled", "yes",
                                       "--cluster-config-file", str(workdir / f"nodes-{port}.conf"),
                                       "--cluster-node-timeout", str(node_timeout_ms),
                                       "--cluster-replica-validity-factor", "0"))


def start_cluster(workdir: Path, masters: int = 3, replicas: int = 0) -> RedisClusterServers:
    """Start cluster-enabled servers on free ports and join them into one cluster:
    `masters` masters with `replicas` replicas each (then a short node timeout, so that
    a failover takes about a second)."""
    assert REDIS_CLI is not None, redis_missing()
    timeout = FAILOVER_NODE_TIMEOUT_MS if replicas else CLUSTER_NODE_TIMEOUT_MS
    cluster = RedisClusterServers([], replicas)
    try:
        for _ in range(masters * (1 + replicas)):
            cluster.nodes.append(_start_on_a_free_port(lambda: _cluster_node(workdir, timeout)))
        subprocess.run([REDIS_CLI, "--cluster", "create",
                        *(f"127.0.0.1:{node.port}" for node in cluster.nodes),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=UNIT * 4)
        cluster.wait_ok()
    except BaseException:
        cluster.stop()
        raise
    return cluster
