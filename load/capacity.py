"""The capacity model of docs/capacity.md: from per-core figures measured by `make bench`,
how many gateway processes, Redis Cluster shards and MongoDB shards serve a district or a
country, and which resource binds first.

    python -m load capacity                                   # the last run in docs/benchmarks.md
    python -m load capacity --results load/results/<ts>/report.json --families 1000000

Pure functions: `measured_from_report` reads a report.json, `plan` sizes a deployment,
`markdown` writes it out. Every figure that was not measured here is an `Assumptions` field
(population, behaviour, and the throughput of one Redis or MongoDB shard), named as such in
the output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Measured:
    """Per-core figures of one gateway process (over Redis: the production path)."""

    source: str
    deliveries_per_s: float  # class fan-out, best sustained (p99 < 100 ms, nothing lost)
    posts_per_s: float  # the publish rate of that step: store appends + broker publishes per second
    channels_posting: int  # classes posting in the fan-out scenario (appends per channel = posts / channels)
    connects_per_s: float  # from CPU ms per connect (idle scenario)
    storm_recoveries_per_s: float  # guardians reconnecting with `since`, replies complete, per second
    kib_per_connection: float  # memory per idle connection
    redis_messages_per_core: float | None = None  # pub/sub messages per second per Redis core, if measured
    # idle connections whose periodic refreshes (presence, connection places) one Redis core
    # carries: the idle scenario's connections over its Redis CPU, if measured
    refreshed_connections_per_redis_core: float | None = None


# The sixth run of docs/benchmarks.md ("Issue 16: the sixth run", commit 32a1e01, 2026-11-30, a
# slower machine than the fifth run's, the first run to measure Redis under idle connections):
# liaison-redis-1, one gateway over Redis on one core. The same figures as `measured_from_report`
# of docs/bench/2026-11-30-sixth/report.json (a unit test checks it). Kept after the seventh and
# eighth runs, which ran on a faster machine: the plan sizes on the slowest core measured.
LAST_RUN = Measured(
    source="docs/benchmarks.md, sixth run (commit 32a1e01, 2026-11-30), liaison-redis-1",
    deliveries_per_s=11_451.1, posts_per_s=400, channels_posting=75,
    connects_per_s=1000 / 1.299, storm_recoveries_per_s=2000 / 2.544, kib_per_connection=11.11,
    redis_messages_per_core=400 / (4.8 / 100), refreshed_connections_per_redis_core=10_000 / (3.6 / 100))


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What was not measured here: the population, its behaviour, and the shards' throughput."""

    families: int = 1_000_000
    devices_per_family: float = 1.8  # guardians' phones and browsers that hold a connection
    online_share: float = 0.6  # of those devices, connected at the morning peak
    families_per_class: int = 25
    families_per_school: int = 250
    staff_per_school: int = 25
    people_per_family: float = 3.0  # guardians and students in the directory
    directory_kib_per_person: float = 1.0  # docs/design-notes.md, "The directory in memory"
    connections_per_gateway: int = 10_000  # a gateway process's target (LIAISON_MAX_CONNECTIONS is 15,000)
    core_headroom: float = 0.5  # plan each core at half of its measured best
    storm_share: float = 0.8  # of the connections, those reconnecting at 8:30 ...
    storm_seconds: float = 120.0  # ... within these seconds
    class_posts_peak_hour: float = 2.0  # posts per class in the busiest hour
    read_marks_per_post: float = 1.0  # read marks written per family per post
    announcement_seconds: float = 30.0  # a national announcement reaches every connection within
    redis_messages_per_shard: float = 150_000.0  # pub/sub messages out per second per Redis shard
    mongo_writes_per_shard: float = 3_000.0  # majority-acknowledged writes per second per MongoDB shard
    mongo_reads_per_shard: float = 10_000.0  # indexed reads per second per MongoDB shard
    school_affine: bool = False  # the load balancer routes a school's families to the same gateways


@dataclass(frozen=True, slots=True)
class Need:
    what: str
    count: int
    because: str


@dataclass(frozen=True, slots=True)
class Plan:
    measured: Measured
    assumptions: Assumptions
    connections: int
    classes: int
    schools: int
    gateways: list[Need]
    redis_shards: list[Need]
    mongo_shards: list[Need]
    directory_mib_per_gateway: float
    gateway_memory_gib: float
    breaks_first: list[str]

    def gateways_needed(self) -> Need:
        return max(self.gateways, key=lambda n: n.count)

    def redis_needed(self) -> Need:
        return max(self.redis_shards, key=lambda n: n.count)

    def mongo_needed(self) -> Need:
        return max(self.mongo_shards, key=lambda n: n.count)


def _up(value: float) -> int:
    return max(1, math.ceil(value - 1e-9))


def plan(measured: Measured, a: Assumptions = Assumptions()) -> Plan:
    connections = round(a.families * a.devices_per_family * a.online_share)
    classes = _up(a.families / a.families_per_class)
    schools = _up(a.families / a.families_per_school)
    per_class = connections / classes
    per_school = connections / schools
    usable = a.core_headroom  # each gateway process is one core

    # gateways
    by_memory = _up(connections / a.connections_per_gateway)
    storm = connections * a.storm_share
    by_storm = _up(storm / a.storm_seconds / (measured.storm_recoveries_per_s * usable))
    by_connects = _up(storm / a.storm_seconds / (measured.connects_per_s * usable))
    class_deliveries = classes * a.class_posts_peak_hour / 3600 * per_class
    by_fanout = _up(class_deliveries / (measured.deliveries_per_s * usable))
    by_announcement = _up(connections / a.announcement_seconds / (measured.deliveries_per_s * usable))
    gateways = [
        Need("connections held", by_memory,
             f"{connections:,} connections at {a.connections_per_gateway:,} a process"),
        Need("8:30 storm", by_storm,
             f"{storm:,.0f} reconnects with `since` in {a.storm_seconds:g} s at "
             f"{measured.storm_recoveries_per_s:,.0f}/s a core (x {usable:g} headroom)"),
        Need("connects", by_connects, f"at {measured.connects_per_s:,.0f} connects/s a core"),
        Need("class fan-out at the peak hour", by_fanout,
             f"{class_deliveries:,.0f} deliveries/s at {measured.deliveries_per_s:,.0f}/s a core"),
        Need("national announcement", by_announcement,
             f"{connections:,} deliveries within {a.announcement_seconds:g} s"),
    ]
    g = max(n.count for n in gateways)

    # Redis Cluster: one publish per message, sent to every gateway subscribed to its channel
    def spread(per_channel: float) -> float:  # gateways holding a channel's connections
        if a.school_affine:
            return min(g, max(1.0, per_channel / a.connections_per_gateway + 1))
        return float(g * (1 - (1 - 1 / g) ** per_channel))  # connections land on random gateways
    class_out = classes * a.class_posts_peak_hour / 3600 * spread(per_class)
    announcement_out = schools * spread(per_school) / a.announcement_seconds
    redis_rate = measured.redis_messages_per_core or a.redis_messages_per_shard
    redis = [
        *([Need("presence and connection places, refreshed every 5 s", _up(connections / refreshed),
                f"{connections:,} connections at {refreshed:,.0f} a core (measured: Redis's CPU under "
                "idle connections)")]
          if (refreshed := measured.refreshed_connections_per_redis_core) else []),
        Need("class posts at the peak hour", _up(class_out / redis_rate),
             f"{class_out:,.0f} pub/sub messages/s ({spread(per_class):.1f} gateways a class)"),
        Need("national announcement (one post per school channel)", _up(announcement_out / redis_rate),
             f"{announcement_out:,.0f} pub/sub messages/s ({schools:,} schools x "
             f"{spread(per_school):.0f} gateways in {a.announcement_seconds:g} s)"),
    ]

    # MongoDB: appends and read marks are writes; storm recoveries read (one per gateway and
    # channel with the recent-messages cache, one per guardian without it)
    posts = classes * a.class_posts_peak_hour / 3600
    writes = posts * (1 + a.read_marks_per_post * a.families_per_class)
    channels_per_guardian = 2  # the class and the school (user: channels store nothing)
    fills = (classes * spread(per_class) + schools * spread(per_school))
    reads_without_cache = storm * channels_per_guardian
    reads = min(fills, reads_without_cache) / a.storm_seconds
    mongo = [
        Need("appends and read marks at the peak hour", _up(writes / a.mongo_writes_per_shard),
             f"{writes:,.0f} writes/s"),
        Need("storm reads (recent-messages cache fills)", _up(reads / a.mongo_reads_per_shard),
             f"{reads:,.0f} reads/s ({min(fills, reads_without_cache):,.0f} fills in {a.storm_seconds:g} s; "
             f"{reads_without_cache:,.0f} without the cache)"),
    ]

    people = a.families * a.people_per_family + schools * a.staff_per_school
    directory_mib = people * a.directory_kib_per_person / 1024
    memory_gib = (a.connections_per_gateway * measured.kib_per_connection / 1024 + directory_mib) / 1024
    refresh_shards = redis[0].count if measured.refreshed_connections_per_redis_core else 0
    breaks = _breaks_first(a, directory_mib, per_class, spread(per_class), g, refresh_shards)
    return Plan(measured, a, connections, classes, schools, gateways, redis, mongo,
                round(directory_mib, 1), round(memory_gib, 2), breaks)


def _breaks_first(a: Assumptions, directory_mib: float, per_class: float, class_spread: float,
                  gateways: int, refresh_shards: int = 0) -> list[str]:
    notes: list[str] = []
    if refresh_shards > 1:
        notes.append(f"the periodic refreshes in Redis: every connection's presence pairs and connection place "
                     f"are written again every 5 s by its gateway, {refresh_shards} Redis shards' worth of work "
                     "before any message is sent: write what changed only (a gateway's members under keys that "
                     "expire with it, one expiry refreshed per key) before going national")
    if directory_mib > 512:
        notes.append(f"the directory in every gateway's memory: {directory_mib:,.0f} MiB per process, and a "
                     "full re-index on each change: one deployment per district (or a directory sharded by "
                     "school) before anything else")
    if class_spread > 0.5 * per_class:
        notes.append(f"connections spread at random: a class's {per_class:.0f} connections sit on "
                     f"{class_spread:.0f} different gateways, so each gateway subscribes to nearly every "
                     "class on Redis and the recent-messages cache fills once per guardian, not per class: "
                     "route a school's families to the same gateways (school-affine load balancing)")
    notes.append("a national `school:` channel (one channel for the country): every gateway subscribes to it, "
                 "its appends are serialised on one `seq` counter and one MongoDB shard, and a storm "
                 "recovers it on every gateway at once (the cache makes that one read per gateway); "
                 "announce per school channel instead")
    notes.append(f"hot channels: one channel's posts are one store shard's and one Redis shard's load "
                 f"whatever the cluster's size ({gateways} gateways here)")
    return notes


def measured_from_report(report: Mapping[str, Any], target: str = "liaison-redis-1",
                         source: str = "report.json") -> Measured:
    """Per-core figures from a `make bench` report.json (one gateway target)."""
    scenarios = report["targets"][target]["scenarios"]
    fan, idle, storm = scenarios["fanout"], scenarios["idle"], scenarios["storm"]
    redis_rate = None
    best = [s for s in fan.get("steps", []) if s.get("rate") == fan.get("best_sustained_publish_rate")]
    if best and best[0].get("redis_cpu_pct"):
        redis_rate = best[0]["rate"] / (best[0]["redis_cpu_pct"] / 100)
    complete = storm.get("all_complete_s") or storm.get("last_complete_s")
    refreshed = None
    if idle.get("idle_redis_cpu_pct") and idle.get("connected"):
        refreshed = float(idle["connected"]) / (float(idle["idle_redis_cpu_pct"]) / 100)
    return Measured(
        source=f"{source}, {target}",
        deliveries_per_s=float(fan["best_sustained_deliveries_per_s"]),
        posts_per_s=float(fan["best_sustained_publish_rate"]),
        channels_posting=int(fan.get("channels") or 80),
        connects_per_s=1000 / float(idle["cpu_ms_per_connect"]),
        storm_recoveries_per_s=float(storm["clients"]) / float(complete),
        kib_per_connection=float(idle["kib_per_connection"]),
        redis_messages_per_core=redis_rate, refreshed_connections_per_redis_core=refreshed)


def load_measured(path: Path | None, target: str = "liaison-redis-1") -> Measured:
    if path is None:
        return LAST_RUN
    return measured_from_report(json.loads(path.read_text()), target, str(path))


def markdown(p: Plan) -> str:
    m, a = p.measured, p.assumptions
    lines = [f"### {a.families:,} families ({'school-affine' if a.school_affine else 'random'} routing)", "",
             f"Per-core figures from {m.source}: {m.deliveries_per_s:,.0f} deliveries/s, "
             f"{m.posts_per_s:,.0f} posts/s ({m.posts_per_s / m.channels_posting:.1f} appends/s per channel), "
             f"{m.connects_per_s:,.0f} connects/s, {m.storm_recoveries_per_s:,.0f} storm recoveries/s, "
             f"{m.kib_per_connection:.1f} KiB per connection; Redis "
             + (f"{m.redis_messages_per_core:,.0f} pub/sub messages/s per core (measured)"
                if m.redis_messages_per_core else
                f"{a.redis_messages_per_shard:,.0f} pub/sub messages/s per shard (assumed)") + ".", "",
             f"{p.connections:,} connections at the peak, {p.classes:,} classes, {p.schools:,} schools.", "",
             "| resource | need | because |", "| --- | --- | --- |"]
    for title, needs in (("gateway processes", p.gateways), ("Redis Cluster shards", p.redis_shards),
                         ("MongoDB shards", p.mongo_shards)):
        for need in needs:
            lines.append(f"| {title}: {need.what} | {need.count:,} | {need.because} |")
    g, r, mo = p.gateways_needed(), p.redis_needed(), p.mongo_needed()
    lines += ["", f"**{g.count:,} gateway processes** (bound by: {g.what}), **{r.count:,} Redis shard(s)** "
              f"({r.what}), **{mo.count:,} MongoDB shard(s)** ({mo.what}); each gateway "
              f"~{p.gateway_memory_gib:g} GiB ({p.directory_mib_per_gateway:,.0f} MiB of it the directory).", "",
              "Where it breaks first:", ""]
    lines += [f"- {note}" for note in p.breaks_first]
    return "\n".join(lines) + "\n"


def report(measured: Measured, families: list[int], **overrides: Any) -> str:
    """The capacity plan in Markdown for each population size, random and school-affine routing."""
    out = []
    for n in families:
        for affine in (False, True):
            out.append(markdown(plan(measured, replace(Assumptions(**overrides), families=n,
                                                       school_affine=affine))))
    out.append("Assumptions (not measured here): " + ", ".join(
        f"{k}={v}" for k, v in asdict(Assumptions(**overrides)).items() if k not in ("families", "school_affine")))
    return "\n".join(out) + "\n"
