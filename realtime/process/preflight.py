"""Refuse to start when another project's package stands in for one of ours.

Liaison's top-level package names (`channels`, `realtime`, `auth`, `school`, `persistence`,
`web`) are taken on PyPI: `channels` is Django Channels. pip installs two distributions that
ship the same top-level name into one folder without a word, each overwriting the other's
files, and an import then finds whichever comes first. Liaison is an application installed in
an environment of its own (a venv or an image); this check says so at start-up rather than
letting a foreign module fail later in an odd place.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

PACKAGES = ("realtime", "channels", "persistence", "auth", "notify", "school", "web")
MARKERS = ("channels.broker", "auth.tokens", "school.directory", "persistence.store")  # ours only
DISTRIBUTION = "liaison"
ADVICE = ("Liaison is an application: install it in an environment of its own, with nothing else in it "
          "(python -m venv /opt/liaison && /opt/liaison/bin/pip install .), or run its container image.")


def _root(name: str) -> Path | None:
    """The folder that holds package `name`, as this interpreter would import it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent.parent


def problems() -> list[str]:
    """What stands in for Liaison's packages; empty when everything is ours."""
    found: list[str] = []
    ours = _root("realtime")
    for name in PACKAGES[1:]:
        root = _root(name)
        if root != ours:
            where = f"from {root / name}" if root else "as a namespace or not at all"
            found.append(f"the package `{name}` is imported {where}, not beside Liaison's `realtime` ({ours})")
    if not found:
        for module in MARKERS:
            if importlib.util.find_spec(module) is None:
                found.append(f"`{module}` is missing: the package `{module.split('.')[0]}` is not Liaison's")
    others = packages_distributions()
    for name in PACKAGES:
        strangers = sorted({d for d in others.get(name, []) if d.lower() != DISTRIBUTION})
        if strangers:
            found.append(f"the distribution {', '.join(strangers)} also installs a top-level `{name}` "
                         "(pip merges such packages into one folder)")
    return found


def check() -> None:
    """Exit with status 2 and a message that says what to do when a package is not ours."""
    found = problems()
    if found:
        lines = ["liaison: cannot start: another project's package stands in for one of Liaison's:",
                 *[f"  - {problem}" for problem in found], ADVICE]
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2)
