"""The capacity model (load/capacity.py, docs/capacity.md): sizes follow the measured
per-core figures and the assumptions, and the report names what binds and breaks first."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from load import capacity
from load.capacity import LAST_RUN, Assumptions, measured_from_report, plan
from load.cli import main


def test_a_million_families_are_bound_by_the_connections_each_gateway_holds() -> None:
    p = plan(LAST_RUN, Assumptions(families=1_000_000))
    assert p.connections == 1_080_000 and p.classes == 40_000 and p.schools == 4_000
    assert p.gateways_needed().what == "connections held" and p.gateways_needed().count == 108
    assert any("directory" in note for note in p.breaks_first)


def test_the_storm_binds_when_everyone_reconnects_at_once_and_scales_with_the_measured_rate() -> None:
    tight = Assumptions(families=1_000_000, storm_share=1.0, storm_seconds=10.0)
    p = plan(LAST_RUN, tight)
    assert p.gateways_needed().what in ("8:30 storm", "connects")  # a storm is reconnects
    assert {n.what: n.count for n in p.gateways}["8:30 storm"] > 108  # beyond the connections held
    faster = plan(replace(LAST_RUN, storm_recoveries_per_s=LAST_RUN.storm_recoveries_per_s * 2), tight)
    storm = {n.what: n.count for n in p.gateways}["8:30 storm"]
    assert {n.what: n.count for n in faster.gateways}["8:30 storm"] in (storm // 2, storm // 2 + 1)


def test_school_affine_routing_cuts_redis_traffic_and_cache_fills() -> None:
    spread = plan(LAST_RUN, Assumptions(families=1_000_000))
    affine = plan(LAST_RUN, Assumptions(families=1_000_000, school_affine=True))
    assert affine.redis_shards[1].because != spread.redis_shards[1].because
    fills = {n.what: n for n in spread.mongo_shards}["storm reads (recent-messages cache fills)"]
    fills_affine = {n.what: n for n in affine.mongo_shards}["storm reads (recent-messages cache fills)"]
    assert fills_affine.count <= fills.count
    assert any("school-affine" in note for note in spread.breaks_first)
    assert not any("school-affine" in note for note in affine.breaks_first)


def test_a_district_keeps_its_directory_in_memory() -> None:
    p = plan(LAST_RUN, Assumptions(families=100_000))
    assert p.directory_mib_per_gateway < 512 and not any("directory" in note for note in p.breaks_first)
    assert p.redis_needed().count == 1 and p.mongo_needed().count == 1


def test_figures_are_read_from_a_bench_report(tmp_path: Path) -> None:
    report = {"targets": {"liaison-redis-1": {"scenarios": {
        "fanout": {"best_sustained_deliveries_per_s": 30_000, "best_sustained_publish_rate": 1000, "channels": 80,
                   "steps": [{"rate": 1000, "redis_cpu_pct": 20.0}]},
        "idle": {"cpu_ms_per_connect": 1.25, "kib_per_connection": 15.5},
        "storm": {"clients": 2000, "all_complete_s": 1.6}}}}}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    m = capacity.load_measured(path)
    assert (m.deliveries_per_s, m.posts_per_s, m.connects_per_s, m.storm_recoveries_per_s,
            m.kib_per_connection, m.redis_messages_per_core) == (30_000, 1000, 800, 1250, 15.5, 5000)
    assert "report.json" in m.source
    with pytest.raises(KeyError):
        measured_from_report(report, "liaison-embedded")


def test_redis_shards_for_the_periodic_refreshes_follow_the_measured_idle_cost(tmp_path: Path) -> None:
    report = {"targets": {"liaison-redis-1": {"scenarios": {
        "fanout": {"best_sustained_deliveries_per_s": 30_000, "best_sustained_publish_rate": 1000, "channels": 80},
        "idle": {"cpu_ms_per_connect": 1.0, "kib_per_connection": 11.0, "connected": 10_000,
                 "idle_redis_cpu_pct": 4.0},  # 10,000 idle connections cost Redis 4 % of a core
        "storm": {"clients": 2000, "all_complete_s": 1.5}}}}}
    m = measured_from_report(report)
    assert m.refreshed_connections_per_redis_core == 250_000
    shards = {n.what: n.count for n in plan(m, Assumptions(families=1_000_000)).redis_shards}
    assert shards["presence and connection places, refreshed every 5 s"] == 5  # 1,080,000 / 250,000
    assert any("periodic refreshes" in note for note in plan(m, Assumptions(families=1_000_000)).breaks_first)
    assert not any("periodic refreshes" in note for note in plan(m, Assumptions(families=100_000)).breaks_first)
    assert "presence and connection places, refreshed every 5 s" not in {
        n.what for n in plan(replace(m, refreshed_connections_per_redis_core=None)).redis_shards}


def test_the_command_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", "--families", "1000000"]) == 0
    out = capsys.readouterr().out
    assert "### 1,000,000 families (random routing)" in out and "school-affine" in out
    assert "Assumptions (not measured here)" in out and "sixth run" in out


def test_the_default_figures_are_those_of_the_last_report_in_docs() -> None:
    report = Path(__file__).resolve().parents[3] / "docs" / "bench" / "2026-11-30-sixth" / "report.json"
    m = capacity.load_measured(report)
    assert replace(m, source=LAST_RUN.source) == LAST_RUN
