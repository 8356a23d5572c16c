"""The load generator's pure parts: percentiles, loss and duplicate counting, the report and its
charts (matplotlib, the `bench` extra: those tests skip, saying so, where it is absent)."""

from __future__ import annotations

import importlib.util
import math
import struct
import sys
import zlib
from pathlib import Path

import pytest

from load.report import (
    CHARTS_MISSING,
    DeliveryLedger,
    latency_summary,
    markdown,
    percentile,
    profile_summary,
    ratio,
    write_report,
)

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed: it is the `bench` extra (pip install -e '.[bench]')")


def test_percentile_interpolates_between_ranks_of_unsorted_values() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile([10.0, 20.0], 99) == pytest.approx(19.9)


def test_percentile_of_nothing_is_nan_and_q_is_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_in_milliseconds() -> None:
    summary = latency_summary([1_000_000 * i for i in range(1, 101)])  # 1..100 ms
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == 100.0
    assert latency_summary([])["p99_ms"] is None


def test_ledger_counts_every_loss_duplicate_and_stray() -> None:
    ledger = DeliveryLedger()
    recipients = {"class:a": [1, 2, 3], "class:b": [4]}
    assert ledger.record(1, "class:a", 1, 5)
    assert ledger.record(2, "class:a", 1, 7)
    assert not ledger.record(2, "class:a", 1, 9)  # a duplicate: its latency is not counted
    assert ledger.record(4, "class:b", 1)
    assert ledger.record(1, "class:a", 7)  # a message not published in this window
    count = ledger.count([("class:a", 1), ("class:a", 2), ("class:b", 1)], recipients)
    assert count.expected == 3 + 3 + 1
    assert count.delivered == 3
    assert count.lost == 4  # recipient 3 missed seq 1; nobody got seq 2
    assert count.duplicates == 1
    assert count.unexpected == 1
    assert ledger.latencies_ns == [5, 7]
    assert ledger.unique() == 4
    ledger.reset()
    assert ledger.unique() == 0 and not ledger.seen


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a valid PNG: signature, chunks with good CRCs, IHDR first, IEND last."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        if kind == b"IHDR":
            size = struct.unpack(">II", data[:8])
        kinds.append(kind)
        at += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    return size


RESULTS = {
    "targets": {
        name: {"description": name, "scenarios": {
            "fanout": {"connections": 800, "channels": 40, "step_seconds": 5, "steps": [
                {"rate": 10 * k, "published": 50 * k, "offered_deliveries_per_s": 1000 * k,
                 "deliveries_per_s": 1000 * k * factor, "p50_ms": 2.0 * k, "p99_ms": (20.0 * k) if k < 4 else None,
                 "max_ms": 30.0 * k, "lost": 0, "duplicates": 0, "errors": 0, "server_cpu_pct": 50.0,
                 "client_cpu_pct": 60.0, "sustained": k < 4} for k in range(1, 5)]},
            "soak": {"samples": [{"t_s": t, "rss_mib": 50.0 + t / 10} for t in range(0, 60, 10)]}}}
        for name, factor in (("liaison", 0.99), ("reference", 1.0))
    },
}


@needs_matplotlib
def test_line_chart_is_a_png_of_the_asked_size() -> None:
    from load.charts import line_chart

    png = line_chart([("a", [(1.0, 10.0), (2.0, 100.0), (3.0, math.nan)]), ("b", [(1.0, 5.0), (2.0, 0.0)])],
                     width=320, height=200, log_y=True, hline=100.0, hline_label="goal")
    assert png_size(png) == (320, 200)
    assert png_size(line_chart([])) == (800, 450)  # no data still draws the axes


@needs_matplotlib
def test_write_report_writes_each_chart_as_a_png(tmp_path: Path) -> None:
    path = write_report(tmp_path, RESULTS)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["fanout_latency_p50.png", "fanout_latency_p99.png", "fanout_throughput.png", "soak_rss.png"]
    for name in pngs:
        assert png_size((tmp_path / name).read_bytes()) == (800, 450)
        assert f"]({name})" in path.read_text()
    assert CHARTS_MISSING not in path.read_text()


def test_without_matplotlib_the_report_says_why_it_has_no_charts(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "load.charts", None)  # `import load.charts` raises ImportError
    text = write_report(tmp_path, RESULTS).read_text()
    assert not list(tmp_path.glob("*.png"))
    assert CHARTS_MISSING in text and "## Charts" not in text
    assert (tmp_path / "report.json").exists()


def test_profile_summary_ranks_own_and_inclusive_samples() -> None:
    raw = "main;loop;send 30\nmain;loop;parse 10\nmain;idle 60\nnot a stack line\n"
    summary = profile_summary(raw, top=2)
    assert summary["samples"] == 100
    assert summary["own"][0] == {"frame": "idle", "samples": 60, "pct": 60.0}
    assert summary["inclusive"][0]["frame"] == "main"
    assert summary["inclusive"][1] == {"frame": "idle", "samples": 60, "pct": 60.0}


def test_ratio_and_markdown_survive_missing_figures() -> None:
    assert ratio(None, 3.0) is None and ratio(3.0, 0) is None and ratio(3.0, 2.0) == 1.5
    text = markdown({"targets": {"x": {"description": "d", "scenarios": {"chat": {"pairs": 2}}}}}, {})
    assert "| x | 2 |" in text
