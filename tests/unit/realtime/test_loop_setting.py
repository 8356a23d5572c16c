"""LIAISON_LOOP (issue 16): the event loop uvicorn runs the gateway on, and LIAISON_RECENT_CACHE_BYTES."""

from __future__ import annotations

import pytest

from realtime.config import ConfigError, load_settings
from realtime.process.cli import uvicorn_config
from realtime.ws.transport import GuardedH11Protocol


def test_uvloop_when_installed_by_default_the_plain_loop_on_request() -> None:
    assert load_settings({}, demo=True).loop == "auto"
    assert load_settings({"LIAISON_LOOP": "asyncio"}, demo=True).loop == "asyncio"
    assert load_settings({"LIAISON_LOOP": "UVLOOP"}, demo=True).loop == "uvloop"
    assert load_settings({"LIAISON_LOOP": "auto"}, demo=True).loop == "auto"
    with pytest.raises(ConfigError, match="LIAISON_LOOP must be one of auto, asyncio, uvloop"):
        load_settings({"LIAISON_LOOP": "trio"}, demo=True)


def test_uvicorn_gets_the_loop_and_keeps_the_h11_protocol() -> None:
    settings = load_settings({"LIAISON_LOOP": "uvloop", "LIAISON_STORE_URL": "sqlite:///:memory:"}, demo=True)
    config = uvicorn_config(settings, "127.0.0.1", 0)
    assert config.loop == "uvloop"
    assert isinstance(config.http, type) and issubclass(config.http, GuardedH11Protocol)  # h11, with deadlines


def test_the_recent_cache_budget() -> None:
    assert load_settings({}, demo=True).limits.recent_cache_bytes == 64 * 1024 * 1024
    assert load_settings({"LIAISON_RECENT_CACHE_BYTES": "1048576"}, demo=True).limits.recent_cache_bytes == 1 << 20
    with pytest.raises(ConfigError):
        load_settings({"LIAISON_RECENT_CACHE_BYTES": "0"}, demo=True)
