"""The load generator's pure parts: percentiles, loss and duplicate counting, the PNG writer."""

from __future__ import annotations

import math
import struct
import zlib

import pytest

from load.report import (
    DeliveryLedger,
    latency_summary,
    line_chart,
    markdown,
    percentile,
    png_bytes,
    profile_summary,
    ratio,
)


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


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        out.append((kind, data))
        at += 12 + length
    return out


def test_png_has_signature_ihdr_and_decodable_pixels() -> None:
    rows = [bytes([255, 0, 0] * 3), bytes([0, 255, 0] * 3)]
    chunks = _chunks(png_bytes(3, 2, rows))
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, color) == (3, 2, 8, 2)
    raw = zlib.decompress(chunks[1][1])
    assert raw == b"\x00" + rows[0] + b"\x00" + rows[1]


def test_line_chart_is_a_png_of_the_asked_size() -> None:
    png = line_chart([("a", [(1.0, 10.0), (2.0, 100.0), (3.0, 1000.0)]), ("b", [(1.0, 5.0)])],
                     width=320, height=200, log_y=True, hline=100.0)
    chunks = _chunks(png)
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert (width, height) == (320, 200)
    assert len(zlib.decompress(chunks[1][1])) == 200 * (1 + 3 * 320)
    assert _chunks(line_chart([]))  # no data still draws the axes


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
