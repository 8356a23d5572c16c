"""Settings read once from `LIAISON_*` variables."""

from __future__ import annotations

import pytest

from realtime.config import DEFAULT_STORE_URL, DEMO_SECRET, ConfigError, Limits, Secret, load_settings

SECRET = "s" * 32


def test_missing_secret_outside_demo_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="LIAISON_JWT_SECRET"):
        load_settings({})


@pytest.mark.parametrize("secret", ["short", "s" * 31, "é" * 15])
def test_short_secret_is_too_weak(secret: str) -> None:
    with pytest.raises(ConfigError, match="too weak"):
        load_settings({"LIAISON_JWT_SECRET": secret})


def test_secret_of_32_bytes_is_enough() -> None:
    assert load_settings({"LIAISON_JWT_SECRET": "é" * 16}).jwt_secret.value == "é" * 16


def test_demo_without_secret_uses_the_demo_secret() -> None:
    settings = load_settings({}, demo=True)
    assert settings.demo
    assert settings.jwt_secret.value == DEMO_SECRET


def test_defaults() -> None:
    settings = load_settings({"LIAISON_JWT_SECRET": SECRET})
    assert settings.limits == Limits()
    assert settings.store_url == DEFAULT_STORE_URL
    assert settings.redis_url is None
    assert settings.allowed_origins == ()
    assert settings.api_key is None


def test_numbers_parsed_from_env() -> None:
    env = {
        "LIAISON_JWT_SECRET": SECRET,
        "LIAISON_MAX_FRAME_BYTES": "2048",
        "LIAISON_COMMANDS_PER_SECOND": "2.5",
        "LIAISON_COMMAND_BURST": "7",
        "LIAISON_CONNECT_TIMEOUT": "1.5",
        "LIAISON_BAD_FRAMES": "3",
        "LIAISON_OUTBOX_BYTES": "",  # empty: the default
        "LIAISON_PING_INTERVAL": "5",
        "LIAISON_TOKEN_TTL": "60",
        "LIAISON_GAP_FILL_DELAY": "0.25",
    }
    settings = load_settings(env)
    limits = settings.limits
    assert (limits.max_frame_bytes, limits.commands_per_second, limits.command_burst) == (2048, 2.5, 7)
    assert (limits.connect_timeout, limits.bad_frames, limits.outbox_bytes) == (1.5, 3, Limits().outbox_bytes)
    assert isinstance(limits.max_frame_bytes, int)
    assert (settings.ping_interval, settings.token_ttl, settings.gap_fill_delay) == (5.0, 60, 0.25)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("LIAISON_MAX_FRAME_BYTES", "lots"),
        ("LIAISON_COMMAND_BURST", "1.5"),
        ("LIAISON_COMMANDS_PER_SECOND", "fast"),
        ("LIAISON_PING_TIMEOUT", "0"),
        ("LIAISON_BAD_FRAMES", "-3"),
        ("LIAISON_GAP_FILL_DELAY", "-0.5"),
        ("LIAISON_TOKEN_TTL", "0"),
    ],
)
def test_bad_or_non_positive_numbers_name_the_variable(var: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_settings({"LIAISON_JWT_SECRET": SECRET, var: raw})


@pytest.mark.parametrize("var", ["LIAISON_COMMANDS_PER_SECOND", "LIAISON_PING_TIMEOUT"])
def test_nan_is_not_a_number(var: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_settings({"LIAISON_JWT_SECRET": SECRET, var: "nan"})


def test_allowed_origins_split_and_trailing_slashes_stripped() -> None:
    env = {
        "LIAISON_JWT_SECRET": SECRET,
        "LIAISON_ALLOWED_ORIGINS": " https://ecole.example/ ,http://localhost:8000,, ",
    }
    assert load_settings(env).allowed_origins == ("https://ecole.example", "http://localhost:8000")


def test_short_api_key_refused() -> None:
    with pytest.raises(ConfigError, match="LIAISON_API_KEY"):
        load_settings({"LIAISON_JWT_SECRET": SECRET, "LIAISON_API_KEY": "short"})


def test_secrets_hidden_in_reprs() -> None:
    api_key = "k" * 24
    settings = load_settings({"LIAISON_JWT_SECRET": SECRET, "LIAISON_API_KEY": api_key})
    assert SECRET not in repr(Secret(SECRET))
    assert SECRET not in repr(settings)
    assert api_key not in repr(settings)
    assert settings.jwt_secret.bytes() == SECRET.encode()


def test_connection_limits_defaults_and_env() -> None:
    defaults = load_settings({"LIAISON_JWT_SECRET": SECRET})
    assert (defaults.max_connections, defaults.header_timeout, defaults.keep_alive_timeout) == (15_000, 10.0, 5)
    assert defaults.limits.socket_sndbuf == 64 * 1024
    settings = load_settings({
        "LIAISON_JWT_SECRET": SECRET, "LIAISON_MAX_CONNECTIONS": "20", "LIAISON_HEADER_TIMEOUT": "1.5",
        "LIAISON_KEEP_ALIVE_TIMEOUT": "2", "LIAISON_SOCKET_SNDBUF": "16384",
    })
    assert (settings.max_connections, settings.header_timeout, settings.keep_alive_timeout) == (20, 1.5, 2)
    assert settings.limits.socket_sndbuf == 16384


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("LIAISON_MAX_CONNECTIONS", "0"),
        ("LIAISON_MAX_CONNECTIONS", "many"),
        ("LIAISON_HEADER_TIMEOUT", "-1"),
        ("LIAISON_KEEP_ALIVE_TIMEOUT", "0.5"),
        ("LIAISON_SOCKET_SNDBUF", "0"),
    ],
)
def test_bad_connection_limits_name_the_variable(var: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_settings({"LIAISON_JWT_SECRET": SECRET, var: raw})
