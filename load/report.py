"""The pure parts of the load generator: statistics, the delivery ledger and the report files
(JSON, Markdown, and the PNG charts that `load/charts.py` draws with matplotlib, the `bench`
extra). No I/O except `write_report`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOAL_P99_MS = 100.0

# -- statistics ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, linear between closest ranks; NaN when empty.
    `values` need not be sorted."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(latencies_ns: Sequence[int]) -> dict[str, float | None]:
    """p50, p90, p99 and max in milliseconds (None when there is no sample)."""
    if not latencies_ns:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(latencies_ns)
    return {
        "p50_ms": round(percentile(ordered, 50) / 1e6, 3),
        "p90_ms": round(percentile(ordered, 90) / 1e6, 3),
        "p99_ms": round(percentile(ordered, 99) / 1e6, 3),
        "max_ms": round(ordered[-1] / 1e6, 3),
    }


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


# -- loss and duplicates ------------------------------------------------------------


@dataclass
class LedgerCount:
    expected: int = 0
    delivered: int = 0  # unique (recipient, channel, seq) among the expected
    lost: int = 0
    duplicates: int = 0
    unexpected: int = 0  # deliveries of messages not published in this window

    def to_json(self) -> dict[str, int]:
        return {"expected": self.expected, "delivered": self.delivered, "lost": self.lost,
                "duplicates": self.duplicates, "unexpected": self.unexpected}


@dataclass
class DeliveryLedger:
    """Which recipient got which message (channel, seq), to count every loss and duplicate.

    `record` is on the load generator's hot path: one dict lookup and one set insert."""

    seen: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    duplicates: int = 0
    received: int = 0
    latencies_ns: list[int] = field(default_factory=list)

    def record(self, recipient: int, channel: str, seq: int, latency_ns: int | None = None) -> bool:
        """Note a delivery; False when this recipient already had this message (a duplicate)."""
        self.received += 1
        key = (channel, seq)
        got = self.seen.get(key)
        if got is None:
            got = self.seen[key] = set()
        elif recipient in got:
            self.duplicates += 1
            return False
        got.add(recipient)
        if latency_ns is not None:
            self.latencies_ns.append(latency_ns)
        return True

    def unique(self) -> int:
        return self.received - self.duplicates

    def count(self, published: Iterable[tuple[str, int]], recipients: Mapping[str, Iterable[int]]) -> LedgerCount:
        """Compare with what was published: each (channel, seq) should have reached every
        recipient of its channel exactly once."""
        out = LedgerCount(duplicates=self.duplicates)
        keys = set()
        for channel, seq in published:
            keys.add((channel, seq))
            wanted = set(recipients.get(channel, ()))
            got = self.seen.get((channel, seq), set())
            out.expected += len(wanted)
            hit = len(wanted & got)
            out.delivered += hit
            out.lost += len(wanted) - hit
        out.unexpected = sum(len(got) for key, got in self.seen.items() if key not in keys)
        return out

    def reset(self) -> None:
        self.seen.clear()
        self.duplicates = 0
        self.received = 0
        self.latencies_ns.clear()


# -- profiles --------------------------------------------------------------------------


def profile_summary(raw: str, top: int = 15) -> dict[str, Any]:
    """py-spy's raw output (collapsed stacks, `frame;frame;... count` per line): the frames with
    the most samples of their own, and with the most samples inclusive of their callees."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def best(counts: dict[str, int]) -> list[dict[str, Any]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
        return [{"frame": frame, "samples": n, "pct": round(100 * n / total, 1)} for frame, n in ranked]

    return {"samples": total, "own": best(own), "inclusive": best(inclusive)}


# -- report ---------------------------------------------------------------------------


GENERATOR_LIMIT_PCT = 80.0  # a step whose load generator used more of its core is not a server figure


def server_figure(step: Mapping[str, Any]) -> bool:
    """Whether a step measured the server: its load generator stayed at or below 80 % of its
    core (above, the generator may be what bounded the step). Unknown CPU counts as measured."""
    cpu = step.get("client_cpu_pct")
    return cpu is None or cpu <= GENERATOR_LIMIT_PCT


def best_server_step(steps: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The sustained step with the most deliveries/s among those that are server figures."""
    good = [s for s in steps if s.get("sustained") and server_figure(s)]
    return max(good, key=lambda s: s["deliveries_per_s"]) if good else None


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0 or math.isnan(value) or math.isnan(reference):
        return None
    return round(value / reference, 3)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return lines


CHARTS_MISSING = ("No charts: matplotlib is not installed; it is the `bench` extra "
                  "(`pip install -e '.[bench]'`, as `make bench` does).")


def charts(results: Mapping[str, Any]) -> dict[str, tuple[bytes, str]]:
    """The PNG files of a run: name -> (png, caption). Needs matplotlib (`ImportError` otherwise)."""
    from load.charts import line_chart

    out: dict[str, tuple[bytes, str]] = {}
    targets = results.get("targets", {})
    fan = [(name, t["scenarios"]["fanout"]["steps"]) for name, t in targets.items()
           if "fanout" in t.get("scenarios", {}) and t["scenarios"]["fanout"].get("steps")]
    offered = "offered deliveries/s"
    if fan:
        p99 = [(name, [(s["offered_deliveries_per_s"], s["p99_ms"] or math.nan) for s in steps])
               for name, steps in fan]
        out["fanout_latency_p99.png"] = (
            line_chart(p99, title="Class fan-out: p99 latency", xlabel=offered, ylabel="p99 latency (ms, log)",
                       log_y=True, hline=GOAL_P99_MS, hline_label=f"goal: {GOAL_P99_MS:.0f} ms"),
            "Class fan-out: p99 latency (ms, log scale) by offered deliveries/s; dashed red: 100 ms.")
        p50 = [(name, [(s["offered_deliveries_per_s"], s["p50_ms"] or math.nan) for s in steps])
               for name, steps in fan]
        out["fanout_latency_p50.png"] = (
            line_chart(p50, title="Class fan-out: p50 latency", xlabel=offered, ylabel="p50 latency (ms, log)",
                       log_y=True),
            "Class fan-out: p50 latency (ms, log scale) by offered deliveries/s.")
        thr = [(name, [(s["offered_deliveries_per_s"], s["deliveries_per_s"]) for s in steps])
               for name, steps in fan]
        out["fanout_throughput.png"] = (
            line_chart(thr, title="Class fan-out: throughput", xlabel=offered, ylabel="delivered deliveries/s"),
            "Class fan-out: delivered deliveries/s by offered deliveries/s.")
    soak = [(name, t["scenarios"]["soak"]["samples"]) for name, t in targets.items()
            if t.get("scenarios", {}).get("soak", {}).get("samples")]
    if soak:
        rss = [(name, [(s["t_s"], s["rss_mib"]) for s in samples]) for name, samples in soak]
        out["soak_rss.png"] = (line_chart(rss, title="Soak: server memory", xlabel="time (s)", ylabel="RSS (MiB)"),
                               "Soak: server RSS (MiB) over time (s).")
    return out


def _fanout_md(targets: Mapping[str, Any]) -> list[str]:
    lines = ["## Class fan-out", "",
             "Teachers post in their class at stepped rates; every family connection of the class gets "
             "each post. Latency is from the publisher's send (time in the message text) to the "
             "recipient's receipt. A step is *sustained* when p99 < 100 ms, nothing is lost or "
             "duplicated and no publish is refused; a step that is not is tried again (up to 3 tries) and the "
             "best try is shown. CPU: 100 % is one core; *others* is what the rest of the machine used "
             "meanwhile (noise).", ""]
    for name, target in targets.items():
        fan = target.get("scenarios", {}).get("fanout")
        if not fan:
            continue
        lines += [f"### {name}", "",
                  f"{fan['connections']:,} connections, {fan['channels']} classes, "
                  f"{fan['step_seconds']} s per step. Best sustained: "
                  f"**{_fmt(fan.get('best_sustained_deliveries_per_s'), 0)} deliveries/s**"
                  f" ({_fmt(fan.get('best_sustained_publish_rate'), 0)} posts/s"
                  + (f", {_fmt(fan['best_sustained_offered_deliveries_per_s'], 0)} offered: the goals' figure"
                     if fan.get("best_sustained_offered_deliveries_per_s") else "") + ").", ""]
        rows = [(s["rate"], s["published"], s["deliveries_per_s"], s["p50_ms"], s["p99_ms"], s["max_ms"],
                 s["lost"], s["duplicates"], s["errors"], s["server_cpu_pct"], s["client_cpu_pct"],
                 s.get("redis_cpu_pct"), s.get("others_cpu_pct"), s.get("attempts", 1),
                 "yes" if s["sustained"] else "no",
                 "yes" if server_figure(s) else "**not a server figure** (load generator > 80 %)")
                for s in fan["steps"]]
        lines += _table(["posts/s", "published", "deliveries/s", "p50 ms", "p99 ms", "max ms", "lost", "dup",
                         "errors", "server CPU %", "load CPU %", "redis CPU %", "others CPU %", "tries",
                         "sustained", "server figure"], rows)
        lines.append("")
    return lines


def _scenario_rows(targets: Mapping[str, Any], scenario: str,
                   cols: Sequence[tuple[str, str]]) -> list[Sequence[Any]]:
    rows: list[Sequence[Any]] = []
    for name, target in targets.items():
        result = target.get("scenarios", {}).get(scenario)
        if result:
            rows.append([name, *[result.get(key) for key, _ in cols]])
    return rows


SCENARIO_TABLES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "broadcast": ("School broadcast",
                  "Every connection of one school; the director's announcement; time from the publish "
                  "to the last delivery seen by the load generator (median over the announcements). For "
                  "Liaison, also the server's own figure (`liaison_fanout_latency_seconds` in /metrics: from "
                  "the message's timestamp to the last frame handed to the kernel): the load generator needs "
                  "tens of µs per frame, so with thousands of recipients its own reading adds to the time.",
                  [("connections", "connections"), ("announcements", "announcements"),
                   ("last_delivery_median_ms", "last delivery, median ms"),
                   ("last_delivery_max_ms", "last delivery, max ms"),
                   ("server_fanout_median_ms", "server-side fan-out done, median ms"),
                   ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                   ("lost", "lost"), ("duplicates", "dup")]),
    "storm": ("Morning storm",
              "Clients connect at once with `since` and recover the missed messages; time from the first "
              "connect until every client has its reply with every missed message, then a live post "
              "checked on every client.",
              [("clients", "clients"), ("missed_per_channel", "missed each"),
               ("all_complete_s", "all live and complete, s"), ("median_complete_s", "median client, s"),
               ("incomplete", "incomplete"), ("failed", "failed"), ("live_probe_lost", "probe lost"),
               ("live_probe_max_ms", "probe max ms"), ("server_cpu_s", "server CPU s")]),
    "chat": ("Chat",
             "Teacher-guardian pairs; the teacher posts, the guardian answers on receipt; round trip "
             "seen by the teacher (two stored messages).",
             [("pairs", "pairs"), ("round_trips", "round trips"), ("rtt_p50_ms", "RTT p50 ms"),
              ("rtt_p99_ms", "RTT p99 ms"), ("rtt_max_ms", "RTT max ms"), ("lost", "lost")]),
    "idle": ("Idle connections: memory and CPU",
             "N clients connect (in batches) and stay idle; server RSS before and after.",
             [("connections", "connections"), ("connected", "connected"), ("connect_rate_per_s", "connects/s"),
              ("rss_before_mib", "RSS before MiB"), ("rss_after_mib", "RSS after MiB"),
              ("kib_per_connection", "KiB per connection"), ("cpu_ms_per_connect", "CPU ms per connect"),
              ("idle_cpu_pct", "idle CPU %"), ("idle_redis_cpu_pct", "idle Redis CPU %")]),
    "soak": ("Soak",
             "A steady class fan-out for a bounded time; server memory sampled along the run.",
             [("connections", "connections"), ("rate", "posts/s"), ("seconds", "s"),
              ("rss_start_mib", "RSS start MiB"), ("rss_end_mib", "RSS end MiB"), ("rss_max_mib", "RSS max MiB"),
              ("p99_ms", "p99 ms"), ("lost", "lost"), ("duplicates", "dup")]),
}


def markdown(results: Mapping[str, Any], images: Mapping[str, str]) -> str:
    targets: Mapping[str, Any] = results.get("targets", {})
    lines = ["# Liaison benchmark report", "",
             f"Run {results.get('started', '')}, {results.get('duration_s', 0):.0f} s. "
             f"Machine: {results.get('machine', {}).get('cpus', '?')} CPUs; load generator on CPU "
             f"{results.get('machine', {}).get('load_cpus', '?')}, servers on CPU "
             f"{results.get('machine', {}).get('server_cpus', '?')}. Codec: {results.get('codec', 'json')}. "
             f"Load average at start: {results.get('machine', {}).get('loadavg_at_start', '?')}. "
             f"Server code digest: `{results.get('machine', {}).get('server_code_digest', '?')}`.", ""]
    lines += ["Targets: " + ", ".join(f"`{name}` ({t.get('description', '')})" for name, t in targets.items()), ""]
    if results.get("goals"):
        lines += ["## Goals", ""]
        lines += _table(["goal", "measured", "target", "met"],
                        [(g["goal"], g["measured"], g["target"], g["met"]) for g in results["goals"]])
        lines.append("")
    if results.get("ratios"):
        lines += ["## Ratios to the reference server (same run)", ""]
        lines += _table(["target", *results["ratio_columns"]],
                        [[name, *[_fmt(row.get(c), 2) for c in results["ratio_columns"]]]
                         for name, row in results["ratios"].items()])
        lines.append("")
    lines += _fanout_md(targets)
    for scenario, (title, text, cols) in SCENARIO_TABLES.items():
        rows = _scenario_rows(targets, scenario, cols)
        if rows:
            lines += [f"## {title}", "", text, ""]
            lines += _table(["target", *[label for _, label in cols]], rows)
            lines.append("")
    if images:
        lines += ["## Charts", ""]
        for name, caption in images.items():
            lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    profiles = [(name, scenario, result["profile"]) for name, t in targets.items()
                for scenario, result in t.get("scenarios", {}).items() if result.get("profile")]
    if profiles:
        lines += ["## Server profiles (py-spy)", ""]
        for name, scenario, prof in profiles:
            lines += [f"### {name}, {scenario} ({prof['samples']:,} samples, file `{prof['file']}`)", ""]
            lines += _table(["own %", "frame"], [(p["pct"], f"`{p['frame']}`") for p in prof["own"][:10]])
            lines.append("")
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {note}" for note in results["notes"]] + [""]
    return "\n".join(lines)


def write_report(directory: Path, results: Mapping[str, Any]) -> Path:
    """Write report.json, the PNG charts and report.md into `directory`; return report.md's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    images: dict[str, str] = {}
    try:
        drawn = charts(results)
    except ImportError:
        drawn = {}
        results = {**results, "notes": [*results.get("notes", []), CHARTS_MISSING]}
    for name, (png, caption) in drawn.items():
        (directory / name).write_bytes(png)
        images[name] = caption
    path = directory / "report.md"
    path.write_text(markdown(results, images))
    return path
