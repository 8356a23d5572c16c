"""The gateway's heap and CPython's cyclic garbage collector.

The collector walks every tracked object of the generations it collects, and runs a full
collection whenever enough new objects have survived the younger ones. Measured under the
fan-out benchmark (`gc.callbacks`, 2,000 connections of the benchmark district), with the
defaults (thresholds 700, 10, 10) a full pass came every few seconds and held the event loop
100 to 300 ms each time: every live delivery's p99.

Two changes, made once the server is up (`liaison serve`, not `create_app`: a test process
that builds many apps must not freeze its own heap):

- What the gateway loaded to serve — the directory (about a million objects for a district
  of 10,000 people), the application, the compiled code — is collected once, then moved to
  the permanent generation (`gc.freeze`): no pass walks it again, and reference counting
  still frees whatever of it is dropped later.
- The young generation is collected after 50,000 allocations instead of 700, and the older
  ones 20 times less often than the younger instead of 10. A live message's objects are
  mostly freed by reference counting before any pass sees them, so fewer passes promote
  fewer of them, and the older generations grow too slowly for a full pass under a
  sustained fan-out (none in the benchmark's steps, against one every few seconds). The
  price: a young pass while 2,000 clients connect at once finds most of its 50,000 objects
  alive, up to ~60 ms (measured), and cyclic garbage waits a little longer (a few MB).
"""

from __future__ import annotations

import gc
import time

import structlog

log = structlog.get_logger("liaison.heap")

THRESHOLDS = (50_000, 20, 20)  # young, middle, old (CPython's defaults: 700, 10, 10)


def freeze_startup_heap() -> None:
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    log.info("heap_frozen", objects=gc.get_freeze_count(), thresholds=THRESHOLDS,
             ms=round((time.perf_counter() - started) * 1000, 1))
