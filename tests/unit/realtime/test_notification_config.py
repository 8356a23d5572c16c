"""The settings of the digest and of scheduled posts (issue 12), read from the environment."""

from __future__ import annotations

import pytest

from realtime.config import ConfigError, load_settings


def test_defaults_and_environment() -> None:
    settings = load_settings({}, demo=True)
    assert (settings.digest_period, settings.digest_poll, settings.schedule_poll) == (1800.0, 60.0, 2.0)
    settings = load_settings({"LIAISON_DIGEST_PERIOD": "900", "LIAISON_DIGEST_POLL": "5",
                              "LIAISON_SCHEDULE_POLL": "0.5"}, demo=True)
    assert (settings.digest_period, settings.digest_poll, settings.schedule_poll) == (900.0, 5.0, 0.5)


@pytest.mark.parametrize("var", ["LIAISON_DIGEST_PERIOD", "LIAISON_DIGEST_POLL", "LIAISON_SCHEDULE_POLL"])
def test_bad_values_name_the_variable(var: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_settings({var: "0"}, demo=True)
    with pytest.raises(ConfigError, match=var):
        load_settings({var: "bientôt"}, demo=True)
