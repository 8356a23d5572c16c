"""The gateway's heap settings (realtime/process/heap.py), in a child process: freezing the
heap of the test process itself would keep every later test's garbage cycles forever."""

from __future__ import annotations

import json
import subprocess
import sys

from realtime.process.heap import THRESHOLDS

CHILD = """
import gc, json
from realtime.process.heap import freeze_startup_heap
loaded = [{"person": n, "channels": [f"class:{n}"]} for n in range(20_000)]  # a directory's worth
before = (gc.get_threshold(), gc.get_freeze_count())
freeze_startup_heap()
print(json.dumps({"before": before, "thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "loaded_tracked": gc.is_tracked(loaded), "young": gc.get_count()[0]}))
"""


def test_the_loaded_heap_is_frozen_and_the_thresholds_raised() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == [[700, 10, 10], 0]
    assert tuple(result["thresholds"]) == THRESHOLDS
    assert result["frozen"] > 40_000  # the 20,000 dicts and their lists, and the rest of the heap
    assert result["loaded_tracked"]  # still tracked (in the permanent generation), not leaked
    assert result["young"] < 100

