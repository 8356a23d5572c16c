"""Prometheus text rendering of the gateway's counters and latency histogram."""

from __future__ import annotations

import time

from channels.broker import Event
from realtime.metrics import LATENCY_BUCKETS, Histogram, Metrics

METRICS = {
    "liaison_connections": "gauge",
    "liaison_subscriptions": "gauge",
    "liaison_channels": "gauge",
    "liaison_messages_published_total": "counter",
    "liaison_messages_delivered_total": "counter",
    "liaison_broker_reconnects_total": "counter",
    "liaison_errors_total": "counter",
    "liaison_fanout_latency_seconds": "histogram",
}


def test_render_names_every_metric_with_its_type() -> None:
    text = Metrics(connections=4, published=2).render(subscriptions=9, channels=3, broker_reconnects=1)
    lines = text.splitlines()
    for name, kind in METRICS.items():
        assert f"# TYPE {name} {kind}" in lines
    assert "liaison_connections 4" in lines
    assert "liaison_subscriptions 9" in lines
    assert "liaison_channels 3" in lines
    assert "liaison_messages_published_total 2" in lines
    assert text.endswith("\n")


def test_errors_are_labelled_by_code() -> None:
    metrics = Metrics()
    metrics.error("forbidden")
    metrics.error("forbidden")
    metrics.error("bad_request")
    metrics.error("")
    lines = metrics.render(0, 0, 0).splitlines()
    assert 'liaison_errors_total{code="forbidden"} 2' in lines
    assert 'liaison_errors_total{code="bad_request"} 1' in lines
    assert not any('code=""' in line for line in lines)


def test_histogram_buckets_are_cumulative() -> None:
    histogram = Histogram()
    for value in (0.001, 0.003, 0.003, 0.2, 10.0):
        histogram.observe(value)
    lines = histogram.render("h")
    counts = {line.split()[0]: float(line.split()[1]) for line in lines}
    assert counts['h_bucket{le="0.001"}'] == 1  # a value on a bound counts in that bucket
    assert counts['h_bucket{le="0.0025"}'] == 1
    assert counts['h_bucket{le="0.005"}'] == 3
    assert counts['h_bucket{le="0.25"}'] == 4
    assert counts['h_bucket{le="2.5"}'] == 4
    assert counts['h_bucket{le="+Inf"}'] == 5
    assert counts["h_count"] == 5
    assert abs(counts["h_sum"] - 10.207) < 1e-6
    buckets = [counts[f'h_bucket{{le="{b}"}}'] for b in LATENCY_BUCKETS]
    assert buckets == sorted(buckets)


def test_delivered_counts_message_pushes_only() -> None:
    metrics = Metrics()
    message = Event("class:cp-a", "message", {"message": {"ts": int(time.time() * 1000)}}, 1)
    metrics.delivered(message, 3)
    metrics.delivered(Event("chat:x", "typing", {"user": "u"}), 5)
    metrics.delivered(message, 0)
    assert metrics.delivered_total == 3
    assert metrics.fanout_latency.count == 1
