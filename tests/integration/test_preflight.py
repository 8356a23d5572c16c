"""Start-up refuses, saying what to do, when another project's package stands in for one of ours
(Django Channels' `channels`, above all). Real interpreters with a stand-in on their path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = "from realtime.process.preflight import check; check()"


def run(args: list[str], first_on_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = [str(first_on_path)] if first_on_path else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}
    return subprocess.run([sys.executable, *args], cwd=first_on_path or ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_our_own_packages_pass() -> None:
    result = run(["-c", CHECK])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_foreign_channels_first_on_the_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "__init__.py").write_text('"""Django Channels (a stand-in)."""\n')
    result = run(["-c", CHECK], first_on_path=tmp_path)
    assert result.returncode == 2
    assert f"`channels` is imported from {tmp_path.resolve() / 'channels'}" in result.stderr
    assert "environment of its own" in result.stderr


def test_a_distribution_merged_into_our_channels_is_refused_by_liaison(tmp_path: Path) -> None:
    """pip merged Django Channels' files into our `channels` folder: the imports still work, the
    installed distribution's record gives it away."""
    dist = tmp_path / "channels-4.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: channels\nVersion: 4.2.0\n")
    (dist / "top_level.txt").write_text("channels\n")
    result = run(["-m", "realtime.process.cli", "token", "p-adam", "--demo"], first_on_path=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""  # no token printed: the check came first
    assert "the distribution channels also installs a top-level `channels`" in result.stderr
    assert "environment of its own" in result.stderr
