"""structlog set-up: one JSON line per event on stderr; never message texts.

The standard library's records (uvicorn, asyncio) pass a `RepeatFilter`: a server out of
descriptors once wrote 557,000 identical `EMFILE` lines; now the same message is written at
most `REPEATS_PER_MINUTE` times a minute, and the next one says how many were left out.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import structlog

REPEATS_PER_MINUTE = 10
MAX_KINDS = 1000  # distinct messages tracked at once; beyond, the oldest window is forgotten


class RepeatFilter(logging.Filter):
    """Lets one kind of record (logger, level, first line of the message template) through at
    most `limit` times per `period` seconds, and counts the ones it drops; the first record of
    that kind let through afterwards carries the count."""

    def __init__(self, limit: int = REPEATS_PER_MINUTE, period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.limit = limit
        self.period = period
        self.clock = clock
        self._windows: dict[tuple[str, int, str], list[float]] = {}  # kind -> [start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:200])
        now = self.clock()
        window = self._windows.get(kind)
        if window is None or now - window[0] >= self.period:
            dropped = int(window[2]) if window is not None else 0
            self._windows.pop(kind, None)
            if len(self._windows) >= MAX_KINDS:
                del self._windows[next(iter(self._windows))]
            self._windows[kind] = [now, 1, 0]
            if dropped:
                record.msg = f"{record.msg} [{dropped} more like this were not logged]"
            return True
        if window[1] < self.limit:
            window[1] += 1
            return True
        window[2] += 1
        return False


def configure_logging(level: str = "info") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
    # uvicorn's own lines for every WebSocket ("accepted", "connection open/closed") would
    # double ours, one connection at a time, thousands at 8:30: only its warnings are kept
    logging.getLogger("uvicorn.error").setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
