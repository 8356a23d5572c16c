"""The repeat filter of the standard library's log records, and the cap's arithmetic in the CLI."""

from __future__ import annotations

import logging

from realtime.config import load_settings
from realtime.process.cli import FD_RESERVE, transport_limits
from realtime.process.logs import RepeatFilter
from tests.support.clock import FakeClock


def record(msg: str, name: str = "asyncio", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_the_same_message_passes_n_times_a_period_then_says_how_many_were_dropped() -> None:
    clock = FakeClock(0.0)
    repeats = RepeatFilter(limit=3, period=60, clock=clock)
    emfile = "socket.accept() out of system resource\nsocket: <fd=7>"
    passed = [repeats.filter(record(emfile)) for _ in range(1000)]
    assert passed.count(True) == 3 and passed[:3] == [True] * 3
    assert repeats.filter(record("another message"))  # other messages have their own count
    clock.now = 60.0
    first = record(emfile)
    assert repeats.filter(first)
    assert first.getMessage().endswith("[997 more like this were not logged]")
    follow = record(emfile)
    assert repeats.filter(follow) and "not logged" not in follow.getMessage()


def test_the_same_text_from_another_logger_or_level_is_counted_apart() -> None:
    repeats = RepeatFilter(limit=1, period=60, clock=FakeClock(0.0))
    assert repeats.filter(record("x", name="uvicorn.error"))
    assert repeats.filter(record("x", name="asyncio"))
    assert repeats.filter(record("x", level=logging.WARNING))
    assert not repeats.filter(record("x", name="asyncio"))


def test_messages_with_arguments_keep_formatting_after_the_count() -> None:
    clock = FakeClock(0.0)
    repeats = RepeatFilter(limit=1, period=1, clock=clock)
    for _ in range(3):
        repeats.filter(logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, "%s busy", ("gw",), None))
    clock.now = 2.0
    again = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, "%s busy", ("gw",), None)
    assert repeats.filter(again)
    assert again.getMessage() == "gw busy [2 more like this were not logged]"


def test_the_connection_cap_stays_well_below_the_descriptor_limit() -> None:
    settings = load_settings({}, demo=True)
    roomy = transport_limits(settings, 1_048_576)
    assert roomy.max_connections == settings.max_connections
    tight = transport_limits(settings, 20_000)
    assert tight.max_connections == (20_000 - FD_RESERVE) * 3 // 4 < settings.max_connections
    assert tight.max_connections < tight.hard_connections < 20_000
    assert tight.header_timeout == settings.header_timeout
    assert tight.socket_sndbuf == settings.limits.socket_sndbuf
