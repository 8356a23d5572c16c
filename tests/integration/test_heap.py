"""`liaison serve` freezes its startup heap once up (realtime/process/heap.py)."""

from __future__ import annotations

import json
from pathlib import Path

from realtime.process.heap import THRESHOLDS
from tests.support.gateway_server import start_gateway
from tests.support.waiting import wait_until


def test_liaison_serve_freezes_its_heap_once_up(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path)
    try:
        wait_until(lambda: "heap_frozen" in gateway.logs(), what="the heap_frozen log line")
        line = next(json.loads(raw) for raw in gateway.logs().splitlines() if "heap_frozen" in raw)
        assert line["objects"] > 10_000 and tuple(line["thresholds"]) == THRESHOLDS
    finally:
        gateway.stop()
