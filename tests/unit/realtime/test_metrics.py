"""The gateway's metrics as prometheus_client renders them for one process (the workers' sums
are tested against real processes in tests/integration/test_metrics_workers.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from channels.broker import Event
from realtime.metrics import LATENCY_BUCKETS, Metrics

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


@dataclass
class FakeHub:
    subscriptions: int = 0
    channel_names: list[str] = field(default_factory=list)
    reconnects: int = 0

    def subscription_count(self) -> int:
        return self.subscriptions

    def channels(self) -> list[str]:
        return self.channel_names


def samples(metrics: Metrics) -> dict[str, float]:
    text = metrics.render().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def test_render_names_every_metric_with_its_type() -> None:
    metrics = Metrics()
    metrics.connections += 5
    metrics.connections -= 1
    metrics.published += 1
    metrics.published += 1
    metrics.sample(FakeHub(9, ["a", "b", "c"], 1))
    text = metrics.render().decode()
    lines = text.splitlines()
    for name, kind in METRICS.items():
        assert f"# TYPE {name} {kind}" in lines
    values = samples(metrics)
    assert values["liaison_connections"] == 4
    assert values["liaison_subscriptions"] == 9
    assert values["liaison_channels"] == 3
    assert values["liaison_messages_published_total"] == 2
    assert values["liaison_broker_reconnects_total"] == 1
    assert not any("_created" in line for line in lines)
    assert text.endswith("\n")


def test_broker_reconnects_follow_the_hub_without_counting_twice() -> None:
    metrics, hub = Metrics(), FakeHub()
    hub.reconnects = 2
    metrics.sample(hub)
    metrics.sample(hub)
    assert samples(metrics)["liaison_broker_reconnects_total"] == 2
    hub.reconnects = 3
    metrics.sample(hub)
    assert samples(metrics)["liaison_broker_reconnects_total"] == 3


def test_errors_are_labelled_by_code() -> None:
    metrics = Metrics()
    metrics.error("forbidden")
    metrics.error("forbidden")
    metrics.error("bad_request")
    metrics.error("")
    values = samples(metrics)
    assert values['liaison_errors_total{code="forbidden"}'] == 2
    assert values['liaison_errors_total{code="bad_request"}'] == 1
    assert 'code=""' not in metrics.render().decode()


def test_fanout_histogram_buckets_are_cumulative() -> None:
    metrics = Metrics()
    for value in (0.001, 0.003, 0.003, 0.2, 10.0):
        metrics.fanout_latency.observe(value)
    values = samples(metrics)
    bucket = 'liaison_fanout_latency_seconds_bucket{{le="{}"}}'.format
    assert values[bucket("0.001")] == 1  # a value on a bound counts in that bucket
    assert values[bucket("0.0025")] == 1
    assert values[bucket("0.005")] == 3
    assert values[bucket("0.25")] == 4
    assert values[bucket("2.5")] == 4
    assert values[bucket("+Inf")] == 5
    assert values["liaison_fanout_latency_seconds_count"] == 5
    assert abs(values["liaison_fanout_latency_seconds_sum"] - 10.207) < 1e-6
    counts = [values[bucket(str(b))] for b in LATENCY_BUCKETS]
    assert counts == sorted(counts)


def test_delivered_counts_message_pushes_only() -> None:
    metrics = Metrics()
    message = Event("class:cp-a", "message", {"message": {"ts": int(time.time() * 1000)}}, 1)
    metrics.delivered(message, 3)
    metrics.delivered(Event("chat:x", "typing", {"user": "u"}), 5)
    metrics.delivered(message, 0)
    values = samples(metrics)
    assert values["liaison_messages_delivered_total"] == 3
    assert values["liaison_fanout_latency_seconds_count"] == 1
    assert metrics.delivered_total == 3


def test_two_processes_worth_of_metrics_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()
    first.published += 1
    assert samples(first)["liaison_messages_published_total"] == 1
    assert samples(second)["liaison_messages_published_total"] == 0
