"""Each layer depends only downward: the rule the README's layout table states, checked on
every import of every module (statically, with `ast`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# lower rank = lower layer; a module may import its own layer and any lower one.
# `auth` sits above `persistence`: one-time codes and device sessions are rules over the
# `AuthStore` protocol (persistence/auth_store.py). `notify` (notifications to people who are
# not connected: e-mail over SMTP, later push and the job engine over the store) sits at the
# same rank, apart from `auth`: it may use the domain and the store, and knows nobody's tokens.
LAYERS: list[tuple[str, int]] = [
    ("school", 0),
    ("realtime", 3),  # the package itself (its __init__ only)
    ("persistence", 1),
    ("channels", 1),
    ("auth", 2),
    ("notify", 2),
    ("realtime.config", 3),
    ("realtime.metrics", 3),
    ("realtime.ws", 4),
    ("realtime.engine", 5),
    ("realtime.services", 6),
    ("realtime.handlers", 7),
    ("realtime.http", 8),
    ("realtime.process", 9),
]
# siblings of one rank that must not know each other
SEPARATE = {"persistence", "channels", "auth", "notify"}


def layer_of(module: str) -> tuple[str, int] | None:
    best: tuple[str, int] | None = None
    for name, rank in LAYERS:
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[0])):
            best = (name, rank)
    return best


def modules() -> list[Path]:
    found: list[Path] = []
    for package in ("school", "auth", "persistence", "channels", "notify", "realtime"):
        found += sorted((ROOT / package).rglob("*.py"))
    return found


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_downward(path: Path) -> None:
    here = layer_of(module_name(path))
    assert here is not None, f"{path} is in no layer of the README's table"
    for imported in imports_of(path):
        there = layer_of(imported)
        if there is None:
            continue  # the standard library or a dependency
        assert there[1] <= here[1], f"{module_name(path)} ({here[0]}) imports {imported} from a layer above"
        if here[0] in SEPARATE and there[0] in SEPARATE and here[1] == there[1]:
            assert here[0] == there[0], f"{module_name(path)} imports {imported}: sibling adapters stay apart"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from realtime.http.api import api_routes\n")
    there = layer_of(imports_of(source)[0])
    here = layer_of("realtime.ws.session")
    assert there is not None and here is not None and there[1] > here[1]


def test_siblings_of_one_rank_stay_apart_but_may_use_a_lower_rank() -> None:
    auth, notify = layer_of("auth.codes"), layer_of("notify.email")
    persistence = layer_of("persistence.auth_store")
    assert auth is not None and persistence is not None and notify is not None
    assert persistence[1] < auth[1] == notify[1]
