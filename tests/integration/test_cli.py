"""The `liaison` command: token, and the start-up errors a newcomer may meet."""

from __future__ import annotations

import os
import subprocess
import sys

from auth.tokens import verify
from realtime.config import DEMO_SECRET
from tests.support.ws_client import UNIT

SECRET = "0123456789abcdef0123456789abcdef-secret"


def liaison(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    return subprocess.run([sys.executable, "-m", "realtime.process.cli", *args], env={**full, **(env or {})},
                          capture_output=True, text=True, timeout=UNIT * 4, check=False)


def test_token_is_signed_with_the_configured_secret():
    done = liaison("token", "t-martin", env={"LIAISON_JWT_SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    assert verify(SECRET.encode(), done.stdout.strip()) == "t-martin"


def test_demo_token_uses_the_demo_secret():
    done = liaison("token", "p-adam", "--demo", "--ttl", "60")
    assert verify(DEMO_SECRET.encode(), done.stdout.strip()) == "p-adam"


def test_missing_or_weak_secret_is_a_clear_startup_error():
    for args in (("token", "t-martin"), ("serve", "--port", "1")):
        missing = liaison(*args)
        assert missing.returncode == 2
        assert "LIAISON_JWT_SECRET is not set" in missing.stderr and "--demo" in missing.stderr
    weak = liaison("serve", "--port", "1", env={"LIAISON_JWT_SECRET": "short"})
    assert weak.returncode == 2 and "too weak" in weak.stderr


def test_bad_setting_names_the_variable():
    done = liaison("serve", "--demo", "--port", "1", env={"LIAISON_MAX_FRAME_BYTES": "lots"})
    assert done.returncode == 2 and "LIAISON_MAX_FRAME_BYTES" in done.stderr


def test_several_workers_need_redis():
    done = liaison("serve", "--demo", "--workers", "2", "--port", "1")
    assert done.returncode == 2 and "LIAISON_REDIS_URL" in done.stderr


def test_demo_refuses_a_production_secret():
    """`--demo` with the production secret would mint tokens that production accepts."""
    for args in (("serve", "--demo", "--port", "1"), ("token", "p-adam", "--demo")):
        done = liaison(*args, env={"LIAISON_JWT_SECRET": SECRET})
        assert done.returncode == 2 and "demo" in done.stderr and "LIAISON_JWT_SECRET" in done.stderr
        assert done.stdout == ""  # no token was printed


def test_demo_refuses_a_store_with_other_schools(tmp_path):
    store = f"sqlite:///{tmp_path / 'district.db'}"
    seeded = liaison("seed-district", "--schools", "1", "--classes", "1", "--students", "1",
                     env={"LIAISON_STORE_URL": store})
    assert seeded.returncode == 0, seeded.stderr
    done = liaison("serve", "--demo", "--port", "1", env={"LIAISON_STORE_URL": store})
    assert done.returncode == 2 and "--demo refuses" in done.stderr and "sch-1" in done.stderr
