"""A fan-out step whose load generator used more than 80 % of its core is not a server figure:
marked so in the report and left out of the best sustained figure."""

from __future__ import annotations

from typing import Any

from load.report import GENERATOR_LIMIT_PCT, best_server_step, markdown, server_figure


def step(rate: float, deliveries: float, load_cpu: float | None, sustained: bool = True) -> dict[str, Any]:
    return {"rate": rate, "published": int(rate), "deliveries_per_s": deliveries, "p50_ms": 1.0, "p99_ms": 9.0,
            "max_ms": 12.0, "lost": 0, "duplicates": 0, "errors": 0, "server_cpu_pct": 50.0,
            "client_cpu_pct": load_cpu, "sustained": sustained}


def test_above_80_percent_of_its_core_the_generator_bounds_the_step() -> None:
    assert GENERATOR_LIMIT_PCT == 80.0
    assert server_figure(step(100, 1000, 80.0)) and server_figure(step(100, 1000, None))
    assert not server_figure(step(100, 1000, 80.1))


def test_the_best_sustained_step_is_the_best_server_figure() -> None:
    steps = [step(100, 2500, 40.0), step(200, 5000, 79.0), step(400, 10000, 91.0), step(800, 9000, 60.0, False)]
    best = best_server_step(steps)
    assert best is not None and best["rate"] == 200
    assert best_server_step([step(400, 10000, 95.0)]) is None


def test_the_report_marks_the_steps_that_are_not_server_figures() -> None:
    fan = {"connections": 2000, "channels": 80, "step_seconds": 2.5, "best_sustained_deliveries_per_s": 5000,
           "best_sustained_publish_rate": 200, "steps": [step(200, 5000, 70.0), step(400, 10000, 91.0)]}
    text = markdown({"targets": {"liaison-embedded": {"scenarios": {"fanout": fan}}}}, {})
    rows = [line for line in text.splitlines() if line.startswith("| 200 ") or line.startswith("| 400 ")]
    assert len(rows) == 2
    assert "not a server figure" not in rows[0] and "not a server figure" in rows[1]
