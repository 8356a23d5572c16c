"""`python -m load run ...` (one target, chosen scenarios) and `python -m load bench` (every
target and scenario at a size for a 2-core machine, with the report in load/results/).

Both start the servers they measure unless `run` is given `--url`: a seeded synthetic
district in a temporary SQLite file, a redis-server per Redis target on a free port, Liaison gateways
(`liaison serve`) and the reference server, all on 127.0.0.1, the servers pinned to one
CPU and this process to another. Only processes started here are stopped, by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from load import scenarios as sc
from load.client import CLIENTS, DEFAULT_CLIENT
from load.report import GENERATOR_LIMIT_PCT, profile_summary, ratio, server_figure, write_report
from load.servers import (
    REPO,
    Pinning,
    Process,
    Usage,
    seed_district,
    start_liaison,
    start_redis,
    start_reference,
    stop_all,
)

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RATES = "25,50,100,200,300,400,600,800,1000,1200,1400,1600,2000"
TARGETS = {
    "reference": "the plain websockets broadcast server, over Redis",
    "liaison-embedded": "one gateway, in-process broker, SQLite (the default loop: uvloop)",
    "liaison-redis-1": "one gateway over Redis pub/sub, SQLite (uvloop)",
    "liaison-redis-2": "two gateways over Redis pub/sub, one SQLite file, clients spread over both (uvloop)",
    # the plain asyncio loop against the default (uvloop), same run (LIAISON_LOOP; issue 16)
    "liaison-embedded-asyncio": "liaison-embedded on the plain asyncio loop (LIAISON_LOOP=asyncio)",
    "liaison-redis-1-asyncio": "liaison-redis-1 on the plain asyncio loop (LIAISON_LOOP=asyncio)",
}


@dataclass
class Plan:
    scenarios: list[str]
    connections: int = 2000
    rates: list[float] = field(default_factory=lambda: sc.parse_rates(DEFAULT_RATES))
    step_seconds: float = 2.5
    drain: float = 3.0
    stop_after_failures: int = 2
    attempts: int = 3
    broadcast_connections: int = 2000
    announcements: int = 10
    storm_clients: int = 2000
    missed: int = 20
    pairs: int = 40
    rounds: int = 20
    idle_connections: int = 10000
    soak_seconds: float = 20.0
    soak_rate: float = 100.0


# -- servers ------------------------------------------------------------------------------


@dataclass
class Servers:
    """What a run started, to stop it all at the end."""

    workdir: Path
    pinning: Pinning | None
    log_level: str
    client: str = DEFAULT_CLIENT  # the load generator's WebSocket client
    processes: list[Process] = field(default_factory=list)
    redis_servers: dict[str, tuple[Process, str]] = field(default_factory=dict)
    district_db: Path | None = None
    shape: sc.Shape | None = None
    secret: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def server_cpus(self) -> frozenset[int] | None:
        return self.pinning.servers if self.pinning else None

    def redis(self, target: str) -> str:
        """A redis-server for one target: deployments sharing one Redis would hear each other's
        events (pub/sub ignores database numbers, and Liaison's channel prefix is fixed)."""
        if target not in self.redis_servers:
            proc, url = start_redis(self.workdir, self.server_cpus)
            self.processes.append(proc)
            self.redis_servers[target] = (proc, url)
        return self.redis_servers[target][1]

    def redis_usage(self, target: str) -> Usage | None:
        found = self.redis_servers.get(target)
        return Usage([found[0].pid]) if found and found[0].alive() else None

    def seed(self, shape: sc.Shape, say: sc.Progress) -> Path:
        if self.district_db is None or self.shape != shape:
            path = self.workdir / "district.db"
            started = time.monotonic()
            seed_district(f"sqlite:////{path}", shape.schools, shape.classes, shape.students,
                          self.workdir / "seed.log")
            say(f"seeded district {shape.schools}x{shape.classes}x{shape.students} in "
                f"{time.monotonic() - started:.1f} s ({path})")
            self.district_db, self.shape = path, shape
        return self.district_db

    def start(self, name: str, shape: sc.Shape, binary: bool, say: sc.Progress) -> tuple[sc.Target, list[Process]]:
        """Start a target's server side; returns the target and the processes to stop after it."""
        cpus = self.server_cpus
        if name == "reference":
            proc, port = start_reference(self.workdir, self.redis(name), cpus)
            self.processes.append(proc)
            say(f"started {name}: pid {proc.pid} on port {port}")
            return sc.Target(name, "reference", [f"ws://127.0.0.1:{port}/"], Usage([proc.pid]), shape,
                             description=TARGETS[name], aux=self.redis_usage(name), client=self.client), [proc]
        gateways = 2 if name.endswith("-2") else 1
        redis_url = self.redis(name) if "redis" in name else None
        db = self.workdir / f"{name}.db"
        shutil.copyfile(self.seed(shape, say), db)
        store_url = f"sqlite:////{db}"
        procs: list[Process] = []
        ports: list[int] = []
        for _ in range(gateways):
            proc, port = start_liaison(self.workdir, store_url, self.secret, redis_url, cpus, self.log_level,
                                       loop="asyncio" if name.endswith("-asyncio") else "auto")
            self.processes.append(proc)
            procs.append(proc)
            ports.append(port)
        where = ", ".join(f"pid {p.pid} on port {port}" for p, port in zip(procs, ports, strict=True))
        say(f"started {name}: {where}")
        urls = [f"ws://127.0.0.1:{p}/ws" for p in ports]
        target = sc.Target(name, "liaison", urls, Usage([p.pid for p in procs]), shape,
                           secret=self.secret.encode(), binary=binary, description=TARGETS.get(name, name),
                           aux=self.redis_usage(name) if redis_url else None, client=self.client)
        return target, procs

    def stop(self, procs: Sequence[Process]) -> None:
        for proc in procs:
            proc.stop()
            if proc in self.processes:
                self.processes.remove(proc)

    def close(self) -> None:
        stop_all(self.processes)
        self.processes.clear()


class Profiler:
    """py-spy recording a server process while a scenario runs (when py-spy is installed)."""

    def __init__(self, pid: int, out: Path, cpus: frozenset[int] | None) -> None:
        self.out = out
        self.finished = False
        self.proc: subprocess.Popen[bytes] | None = None
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            return
        rate = os.environ.get("LIAISON_PROFILE_RATE", "100")  # samples a second
        args = [spy, "record", "--nonblocking", "-r", rate, "-f", "raw", "-o", str(out), "--pid", str(pid)]
        if cpus:
            args = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *args] if shutil.which("taskset") else args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> None:
        """Stop recording (py-spy writes its file on SIGINT); once."""
        if self.proc is not None and self.proc.poll() is None and not self.finished:
            self.finished = True
            self.proc.send_signal(signal.SIGINT)

    def stop(self) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.finish()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.out.exists():
            return None
        return {"file": self.out.name, **profile_summary(self.out.read_text())}


# -- running scenarios --------------------------------------------------------------------


async def run_scenarios(target: sc.Target, plan: Plan, say: sc.Progress, profile_dir: Path | None = None,
                        profile_cpus: frozenset[int] | None = None) -> dict[str, Any]:
    """Each scenario of the plan in turn; with `profile_dir`, py-spy records the (first) gateway
    during the measured part of each scenario (from its `measure` phase to its end)."""
    out: dict[str, Any] = {}
    for name in plan.scenarios:
        profiler: list[Profiler] = []

        def on_phase(phase: str, scenario: str = name, box: list[Profiler] = profiler) -> None:
            if phase == "measure" and profile_dir is not None and target.kind == "liaison" and not box:
                box.append(Profiler(target.usage.pids[0], profile_dir / f"profile-{target.name}-{scenario}.txt",
                                    profile_cpus))
            elif phase == "done" and box:
                box[0].finish()

        target.on_phase = on_phase
        started = time.monotonic()
        try:
            out[name] = await _scenario(name, target, plan, say)
        except Exception as exc:
            say(f"{name} failed: {type(exc).__name__}: {exc}")
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            target.on_phase = None
        out[name]["scenario_seconds"] = round(time.monotonic() - started, 1)
        if profiler:
            summary = profiler[0].stop()
            if summary:
                out[name]["profile"] = summary
        await asyncio.sleep(1.0)
    return out


async def _scenario(name: str, target: sc.Target, plan: Plan, say: sc.Progress) -> dict[str, Any]:
    if name == "fanout":
        return await sc.fanout(target, plan.connections, plan.rates, plan.step_seconds, plan.drain, say,
                               plan.stop_after_failures, plan.attempts)
    if name == "broadcast":
        return await sc.broadcast(target, plan.broadcast_connections, plan.announcements, say)
    if name == "storm":
        return await sc.storm(target, plan.storm_clients, plan.missed, say)
    if name == "chat":
        return await sc.chat(target, plan.pairs, plan.rounds, say)
    if name == "idle":
        return await sc.idle(target, plan.idle_connections, say)
    if name == "soak":
        return await sc.soak(target, plan.connections, plan.soak_rate, plan.soak_seconds, say)
    raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(sc.SCENARIOS)}")


# -- goals and ratios -----------------------------------------------------------------------


def _get(results: dict[str, Any], target: str, scenario: str, key: str) -> Any:
    value = results.get("targets", {}).get(target, {}).get("scenarios", {}).get(scenario, {}).get(key)
    return value


def evaluate(results: dict[str, Any], plan: Plan) -> None:
    """The issue's performance goals and the ratios to the reference server, into `results`."""
    ref = "reference"
    liaison = [t for t in results.get("targets", {}) if t != ref]
    targets = results.get("targets", {})
    # Fan-out is compared on the load each target sustained (its best sustained step's posts/s x
    # recipients, every delivery in with p99 < 100 ms), as issue 16's own table counts it. The
    # delivered deliveries/s of a step divide by the time to its last delivery, so at one same
    # step a target with a longer (but passing) latency read ~0.2-1 % lower: latency counted
    # twice, once by the p99 bound and again as throughput. Reports older than this key fall
    # back to the delivered figure.
    fanout_key = "best_sustained_offered_deliveries_per_s"
    if any(_get(results, t, "fanout", fanout_key) is None for t in targets if _get(results, t, "fanout", "steps")):
        fanout_key = "best_sustained_deliveries_per_s"
    columns = ["fan-out sustained deliveries/s (higher is better)", "connect + subscribe (lower)",
               "broadcast last delivery (lower is better)", "storm all complete (lower)", "chat RTT p50 (lower)",
               "KiB per idle connection (lower)", "CPU per connect (lower)"]
    keys = [("fanout", fanout_key), ("fanout", "connect_seconds"),
            ("broadcast", "last_delivery_median_ms"), ("storm", "all_complete_s"), ("chat", "rtt_p50_ms"),
            ("idle", "kib_per_connection"), ("idle", "cpu_ms_per_connect")]
    if ref in results.get("targets", {}):
        results["ratio_columns"] = columns
        results["ratios"] = {t: {col: ratio(_get(results, t, s, k), _get(results, ref, s, k))
                                 for col, (s, k) in zip(columns, keys, strict=True)} for t in liaison}
    goals: list[dict[str, Any]] = []
    one = "liaison-embedded" if "liaison-embedded" in targets else "liaison-redis-1"
    paths = [x for x in ("liaison-embedded", "liaison-redis-1") if x in targets]

    def against(label: str, t: str, scenario: str, key: str, limit: float, higher: bool, unit: str) -> None:
        mine, theirs = _get(results, t, scenario, key), _get(results, ref, scenario, key)
        r = ratio(mine, theirs)
        if r is None:
            return
        goals.append({"goal": f"{label} ({t})", "measured": f"{r:.2f}x ({mine:,.2f} vs {theirs:,.2f} {unit})",
                      "target": f"{'≥' if higher else '≤'} {limit}x the reference",
                      "met": r >= limit if higher else r <= limit})

    # issue 16's goals, each against the reference server of the same run
    for t in paths:
        against("class fan-out sustained, p99 < 100 ms, none lost, a server figure", t, "fanout",
                fanout_key, 1.0 if t == "liaison-embedded" else 0.9, True, "deliveries/s")
    for t in paths:
        against(f"connect + subscribe {_get(results, t, 'fanout', 'connections') or 0:,} clients", t, "fanout",
                "connect_seconds", 1.5, False, "s")
    for t in paths:
        clients = _get(results, t, "storm", "clients")
        against(f"morning storm, {clients or 0:,} clients x {plan.missed} missed, all complete", t, "storm",
                "all_complete_s", 1.5, False, "s")
    for t in paths:
        kib, conns = _get(results, t, "idle", "kib_per_connection"), _get(results, t, "idle", "connected")
        if kib is not None:
            goals.append({"goal": f"memory per idle connection at {conns:,} connections ({t})",
                          "measured": f"{kib:.1f} KiB", "target": "≤ 16 KiB at 10,000",
                          "met": kib <= 16 and conns >= 10000})
    over_redis = _get(results, "liaison-redis-1", "chat", "rtt_p50_ms")
    embedded = _get(results, "liaison-embedded", "chat", "rtt_p50_ms")
    redis_chat = ratio(over_redis, embedded)
    if redis_chat is not None:
        goals.append({"goal": "chat round trip p50 over Redis vs embedded (liaison-redis-1)",
                      "measured": f"{redis_chat:.2f}x ({over_redis:.1f} vs {embedded:.1f} ms)",
                      "target": "≤ 1.5x", "met": redis_chat <= 1.5})
    # the earlier issues' goals, kept
    last = _get(results, one, "broadcast", "last_delivery_median_ms")
    if last is not None:
        conns = _get(results, one, "broadcast", "connected")
        server = _get(results, one, "broadcast", "server_fanout_median_ms")
        ref_last = _get(results, ref, "broadcast", "last_delivery_median_ms")
        goals.append({"goal": f"school broadcast to {conns:,} connections, last delivery, median ({one})",
                      "measured": f"{last:.1f} ms seen by the load generator"
                                  + (f" (reference: {ref_last:.1f} ms)" if ref_last is not None else "")
                                  + (f"; server-side fan-out done after {server:.1f} ms" if server else ""),
                      "target": "≤ 50 ms (2,000 connections)",
                      "met": last <= 50 and conns >= 2000})
    conns = _get(results, one, "idle", "connected")
    if conns is not None:
        goals.append({"goal": f"connections on one gateway process ({one})",
                      "measured": f"{conns:,} of {_get(results, one, 'idle', 'connections'):,}",
                      "target": "10,000", "met": conns >= 10000})
    two = ratio(_get(results, "liaison-redis-2", "fanout", "best_sustained_deliveries_per_s"),
                _get(results, "liaison-redis-1", "fanout", "best_sustained_deliveries_per_s"))
    if two is not None:
        goals.append({"goal": "two gateways over Redis vs one (fan-out sustained)", "measured": f"{two:.2f}x",
                      "target": "≥ 1.7x", "met": two >= 1.7})
    results["goals"] = goals


# -- commands -----------------------------------------------------------------------------


def _server_digest() -> str:
    """A digest of the server's source (realtime, channels, persistence, auth, school): which code
    the figures are of."""
    digest = hashlib.sha256()
    for package in ("realtime", "channels", "persistence", "auth", "school"):
        for path in sorted((REPO / package).rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _machine(pinning: Pinning | None) -> dict[str, Any]:
    return {"server_code_digest": _server_digest(), "cpus": os.cpu_count(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "load_cpus": sorted(pinning.load) if pinning else "any",
            "server_cpus": sorted(pinning.servers) if pinning else "any", "python": sys.version.split()[0],
            "platform": sys.platform}


def _out_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    return RESULTS / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _plan(args: argparse.Namespace, scenarios: list[str]) -> Plan:
    plan = Plan(scenarios=scenarios)
    for name in ("connections", "step_seconds", "drain", "announcements", "missed", "pairs", "rounds",
                 "soak_seconds", "soak_rate", "idle_connections", "broadcast_connections", "storm_clients",
                 "stop_after_failures", "attempts"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(plan, name, value)
    if getattr(args, "rates", None):
        plan.rates = sc.parse_rates(args.rates)
    return plan


def _trimmed(plan: Plan, target: str) -> Plan:
    """What `bench` runs on a target unless `--full`: the soak only on the reference and the embedded
    gateway, and fewer idle connections on two gateways (the goals name one process)."""
    trimmed = Plan(**{**asdict(plan), "scenarios": list(plan.scenarios)})
    if target not in ("reference", "liaison-embedded") and "soak" in trimmed.scenarios:
        trimmed.scenarios.remove("soak")
    if target == "liaison-redis-2":
        trimmed.idle_connections = min(trimmed.idle_connections, 4000)
    return trimmed


def cmd_bench(args: argparse.Namespace) -> int:
    say = sc.stderr_progress()
    pinning = None if args.no_pin else Pinning.split()
    if pinning:
        pinning.pin_self()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in TARGETS:
            raise SystemExit(f"unknown target {t!r}; choose from {', '.join(TARGETS)}")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if args.quick:
        args.connections = args.connections or 500
        args.idle_connections = args.idle_connections or 2000
        args.broadcast_connections = args.broadcast_connections or 500
        args.storm_clients = args.storm_clients or 500
        args.soak_seconds = args.soak_seconds or 10.0
        args.step_seconds = args.step_seconds or 2.0
        args.pairs = args.pairs or 10
        args.rounds = args.rounds or 10
    plan = _plan(args, scenarios)
    shape = sc.Shape(args.schools, args.classes, args.students)
    out = _out_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                               "machine": _machine(pinning), "codec": "msgpack" if args.msgpack else "json",
                               "load_client": args.client,
                               "district": asdict(shape), "plan": asdict(plan), "targets": {}, "notes": []}
    say(f"bench: targets {', '.join(targets)}; scenarios {', '.join(scenarios)}; results in {out}")
    interleave = "fanout" in scenarios and len(targets) > 1 and not args.no_interleave
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        servers = Servers(Path(tmp), pinning, args.server_log_level, args.client)
        try:
            fanouts: dict[str, dict[str, Any]] = {}
            if interleave:
                fanouts = _fanout_phase(servers, targets, shape, plan, args.msgpack, say)
            for name in targets:
                if name != "reference":
                    servers.seed(shape, say)
                target, procs = servers.start(name, shape, args.msgpack, say)
                t_say = sc.stderr_progress(f"{name}: ")
                t_plan = Plan(**{**asdict(plan), "scenarios": list(plan.scenarios)}) if args.full else _trimmed(
                    plan, name)
                if interleave:
                    t_plan.scenarios = [x for x in t_plan.scenarios if x != "fanout"]
                try:
                    scen = asyncio.run(run_scenarios(target, t_plan, t_say, out if args.profile else None,
                                                     pinning.load if pinning else None))
                finally:
                    servers.stop(procs)
                if name in fanouts:
                    scen = {"fanout": fanouts[name], **scen}
                results["targets"][name] = {"description": target.description, "kind": target.kind,
                                            "gateways": len(target.urls), "scenarios": scen}
                results["duration_s"] = round(time.monotonic() - started, 1)
                evaluate(results, plan)
                write_report(out, results)  # after each target, so an interrupted run keeps its figures
        finally:
            servers.close()
    _notes(results)
    results["duration_s"] = round(time.monotonic() - started, 1)
    evaluate(results, plan)
    path = write_report(out, results)
    say(f"report: {path}")
    for goal in results.get("goals", []):
        say(f"goal: {goal['goal']}: {goal['measured']} (target {goal['target']}) -> "
            f"{'met' if goal['met'] else 'NOT met'}")
    return 0


def _fanout_phase(servers: Servers, names: list[str], shape: sc.Shape, plan: Plan, binary: bool,
                  say: sc.Progress) -> dict[str, dict[str, Any]]:
    """Every target's servers at once, their fan-out steps interleaved (`fanout_compare`): the
    ratios then compare steps measured seconds apart, under the same noise."""
    started: list[sc.Target] = []
    procs: list[Process] = []
    try:
        for name in names:
            if name != "reference":
                servers.seed(shape, say)
            target, mine = servers.start(name, shape, binary, say)
            started.append(target)
            procs.extend(mine)
        say(f"fan-out, interleaved: {', '.join(names)}")
        try:
            return asyncio.run(sc.fanout_compare(started, plan.connections, plan.rates, plan.step_seconds,
                                                 plan.drain, sc.stderr_progress("fanout: "),
                                                 plan.stop_after_failures, plan.attempts))
        except Exception as exc:
            say(f"fan-out failed: {type(exc).__name__}: {exc}")
            return {name: {"error": f"{type(exc).__name__}: {exc}"} for name in names}
    finally:
        servers.stop(procs)


def _notes(results: dict[str, Any]) -> None:
    notes: list[str] = results.setdefault("notes", [])
    for name, target in results.get("targets", {}).items():
        steps = target.get("scenarios", {}).get("fanout", {}).get("steps", [])
        busy = [s for s in steps if not server_figure(s)]
        if busy:
            notes.append(f"{name}: the load generator used more than {GENERATOR_LIMIT_PCT:g} % of its core "
                         f"from {busy[0]['rate']:g} posts/s on; those steps are not server figures (left out of "
                         "the best sustained figure).")


def cmd_capacity(args: argparse.Namespace) -> int:
    from load import capacity

    measured = capacity.load_measured(args.results, args.target)
    print(capacity.report(measured, [int(n) for n in args.families.split(",") if n.strip()]), end="")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    say = sc.stderr_progress()
    pinning = None if args.no_pin else Pinning.split()
    if pinning and not args.url:
        pinning.pin_self()
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    plan = _plan(args, scenarios)
    shape = sc.Shape(args.schools, args.classes, args.students)
    results: dict[str, Any] = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                               "machine": _machine(pinning if not args.url else None), "load_client": args.client,
                               "codec": "msgpack" if args.msgpack else "json", "district": asdict(shape),
                               "plan": asdict(plan), "targets": {}}
    started = time.monotonic()
    out = _out_dir(args.out) if (args.out or args.profile) else None
    if args.url:
        secret = os.environ.get("LIAISON_JWT_SECRET", "")
        if args.target == "liaison" and not secret:
            raise SystemExit("set LIAISON_JWT_SECRET to the server's secret to mint tokens")
        target = sc.Target(args.target, args.target, list(args.url), Usage(list(args.pid or [])), shape,
                           secret=secret.encode() or None, binary=args.msgpack, description="given by --url",
                           client=args.client)
        results["targets"][target.name] = {"description": target.description, "kind": target.kind,
                                           "scenarios": asyncio.run(run_scenarios(target, plan, say))}
    else:
        if args.gateways not in (1, 2):
            raise SystemExit("--gateways: 1 or 2")
        name = "reference" if args.target == "reference" else (
            f"liaison-redis-{args.gateways}" if (args.redis or args.gateways > 1) else "liaison-embedded")
        if args.asyncio and args.target != "reference":
            name += "-asyncio"
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="liaison-load-") as tmp:
            servers = Servers(Path(tmp), pinning, args.server_log_level, args.client)
            try:
                target, _ = servers.start(name, shape, args.msgpack, say)
                scen = asyncio.run(run_scenarios(target, plan, say, out if args.profile else None,
                                                 pinning.load if pinning else None))
                results["targets"][name] = {"description": target.description, "kind": target.kind,
                                            "gateways": len(target.urls), "scenarios": scen}
            finally:
                servers.close()
    results["duration_s"] = round(time.monotonic() - started, 1)
    if out is not None:
        _notes(results)
        evaluate(results, plan)
        say(f"report: {write_report(out, results)}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schools", type=int, default=5, help="district size (default 5 x 80 x 25: ~10,800 users)")
    p.add_argument("--classes", type=int, default=80)
    p.add_argument("--students", type=int, default=25)
    p.add_argument("--msgpack", action="store_true", help="liaison.v1.msgpack instead of JSON (Liaison only)")
    p.add_argument("--client", choices=CLIENTS, default=DEFAULT_CLIENT,
                   help=f"the load generator's WebSocket client (default {DEFAULT_CLIENT}; picows: the bench "
                        "extra)")
    p.add_argument("--connections", type=int, default=None, help="fan-out and soak connections (2000)")
    p.add_argument("--rates", default=None, help=f"fan-out steps, posts/s ({DEFAULT_RATES})")
    p.add_argument("--step-seconds", type=float, default=None, help="seconds per fan-out step (2.5)")
    p.add_argument("--drain", type=float, default=None, help="seconds to wait for late deliveries (3)")
    p.add_argument("--stop-after-failures", type=int, default=None, help="failing steps in a row to stop (2)")
    p.add_argument("--attempts", type=int, default=None, help="tries of a fan-out step that is not sustained (3)")
    p.add_argument("--broadcast-connections", type=int, default=None, help="school broadcast (2000)")
    p.add_argument("--announcements", type=int, default=None, help="announcements (10)")
    p.add_argument("--storm-clients", type=int, default=None, help="morning storm clients (2000)")
    p.add_argument("--missed", type=int, default=None, help="messages missed per class (20)")
    p.add_argument("--pairs", type=int, default=None, help="chat pairs (40)")
    p.add_argument("--rounds", type=int, default=None, help="chat round trips per pair (20)")
    p.add_argument("--idle-connections", type=int, default=None, help="idle connections (10000)")
    p.add_argument("--soak-seconds", type=float, default=None, help="soak duration (20)")
    p.add_argument("--soak-rate", type=float, default=None, help="soak posts/s (100)")
    p.add_argument("--server-log-level", default="info", help="LIAISON_LOG_LEVEL of the started gateways")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--asyncio", action="store_true",
                   help="run Liaison's gateways on the plain asyncio loop (LIAISON_LOOP=asyncio), not uvloop")
    p.add_argument("--profile", action="store_true", help="record the gateway with py-spy during each scenario")
    p.add_argument("--out", default=None, help="report directory (default load/results/<timestamp>)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m load", description="Liaison load generator and benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios against one target")
    run.add_argument("--target", choices=("liaison", "reference"), default="liaison")
    run.add_argument("--scenario", default="fanout", help=f"comma-separated: {', '.join(sc.SCENARIOS)}")
    run.add_argument("--url", action="append", help="a running server's WebSocket URL (repeat for several)")
    run.add_argument("--pid", type=int, action="append", help="with --url: server pids for RSS and CPU")
    run.add_argument("--redis", action="store_true", help="start Liaison over a redis-server it starts")
    run.add_argument("--gateways", type=int, default=1, help="Liaison gateway processes (2 implies --redis)")
    _common(run)
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", help="every target and scenario; writes load/results/<timestamp>/")
    bench.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated: {', '.join(TARGETS)}")
    bench.add_argument("--scenarios", default="idle,fanout,broadcast,storm,chat,soak")
    bench.add_argument("--quick", action="store_true", help="a smaller run (about a minute per target)")
    bench.add_argument("--full", action="store_true", help="every scenario at full size on every target")
    bench.add_argument("--no-interleave", action="store_true",
                       help="run each target's fan-out on its own instead of interleaved with the others")
    _common(bench)
    bench.set_defaults(func=cmd_bench)
    capacity = sub.add_parser("capacity",
                              help="the capacity plan of docs/capacity.md from measured per-core figures")
    capacity.add_argument("--results", type=Path, default=None,
                          help="a report.json of `make bench` (default: the last run in docs/benchmarks.md)")
    capacity.add_argument("--target", default="liaison-redis-1", help="the report's target to read (one gateway)")
    capacity.add_argument("--families", default="100000,1000000",
                          help="comma-separated populations to plan for (a district, a country)")
    capacity.set_defaults(func=cmd_capacity)
    sub.add_parser("amplification", add_help=False,
                   help="non-reading clients recovering large histories: the gateway's RSS (issue 10, item 1); "
                        "`python -m load amplification --help`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["amplification"]:  # its own options (load/amplification.py)
        from load import amplification

        return amplification.main(given[1:])
    if given[:1] == ["recovery-cost"]:  # the storm path's CPU per recovery, in process (issue 16)
        from load import recovery_cost

        return recovery_cost.main(given[1:])
    if given[:1] == ["board"]:  # the director's board's queries on SQLite (issue 17, load/board.py)
        from load import board

        return board.main(given[1:])
    args = build_parser().parse_args(given)
    result: int = args.func(args)
    return result
