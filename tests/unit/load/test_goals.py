"""`make bench`'s goals are issue 16's, each against the reference of the same run (load/cli.py
`evaluate`), read here from the committed fourth run's report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from load.cli import Plan, evaluate

REPORT = Path(__file__).parents[3] / "docs" / "bench" / "2026-11-30" / "report.json"


def goals() -> dict[str, dict[str, Any]]:
    results = json.loads(REPORT.read_text())
    plan = Plan(**results["plan"])
    evaluate(results, plan)
    return {g["goal"]: g for g in results["goals"]}


def test_every_issue_16_goal_is_reported_against_the_same_run() -> None:
    by_goal = goals()
    fanout = by_goal["class fan-out sustained, p99 < 100 ms, none lost, a server figure (liaison-embedded)"]
    assert fanout["measured"].startswith("0.60x (17,223") and fanout["target"] == "≥ 1.0x the reference"
    assert by_goal["class fan-out sustained, p99 < 100 ms, none lost, a server figure (liaison-redis-1)"][
        "target"] == "≥ 0.9x the reference"
    connect = by_goal["connect + subscribe 2,025 clients (liaison-redis-1)"]
    assert connect["measured"].startswith("5.94x") and connect["met"] is False
    storm = by_goal["morning storm, 2,000 clients x 20 missed, all complete (liaison-embedded)"]
    assert storm["measured"].startswith("3.47x")
    assert by_goal["memory per idle connection at 10,000 connections (liaison-embedded)"]["target"] == \
        "≤ 16 KiB at 10,000"
    assert by_goal["chat round trip p50 over Redis vs embedded (liaison-redis-1)"]["measured"].startswith("1.75x")
    assert not any(g["met"] for name, g in by_goal.items() if "(liaison-" in name and "broadcast" not in name
                   and "connections on one" not in name)


def fanout_at(rate: float, offered: float, delivered: float) -> dict[str, Any]:
    return {"fanout": {"best_sustained_publish_rate": rate, "best_sustained_offered_deliveries_per_s": offered,
                       "best_sustained_deliveries_per_s": delivered}}


def test_fan_out_compares_the_load_each_target_sustained_not_its_latency_again() -> None:
    # both sustain the same step; the slower (still passing) latency stretches the time to
    # the last delivery, which must not read as a lower throughput on top of the p99 bound
    results: dict[str, Any] = {"targets": {
        "reference": {"scenarios": fanout_at(1600, 45_904, 45_794)},
        "liaison-embedded": {"scenarios": fanout_at(1600, 45_904, 45_686)},
        "liaison-redis-1": {"scenarios": fanout_at(1200, 34_428, 34_295)}}}
    evaluate(results, Plan(scenarios=["fanout"]))
    by_goal = {g["goal"]: g for g in results["goals"]}
    embedded = by_goal["class fan-out sustained, p99 < 100 ms, none lost, a server figure (liaison-embedded)"]
    assert embedded["measured"].startswith("1.00x (45,904") and embedded["met"] is True
    redis = by_goal["class fan-out sustained, p99 < 100 ms, none lost, a server figure (liaison-redis-1)"]
    assert redis["measured"].startswith("0.75x") and redis["met"] is False
    column = "fan-out sustained deliveries/s (higher is better)"  # the report's ratios say the same
    assert results["ratios"]["liaison-embedded"][column] == 1.0
