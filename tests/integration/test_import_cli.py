"""`liaison import FILE.csv --school ID [--dry-run]` against a real SQLite store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persistence.sqlite import SQLiteStore
from school.demo import SCHOOL_ID, demo_school
from school.directory import Directory
from tests.support.ws_client import UNIT

HEADER = ("eleve_id;eleve_prenom;eleve_nom;classe;responsable1_nom;responsable1_email;"
          "responsable1_telephone;responsable2_nom;responsable2_email")


def school_export(students: int = 300, classes: int = 12, bad_line: int | None = None) -> str:
    """A school's export: siblings share their first guardian, every third student has a second
    one, and student 0's first guardian is the demo's p-adam (known by e-mail). `bad_line`
    (the header is line 1) gets an invalid e-mail address."""
    lines = [HEADER]
    for i in range(students):
        f = i // 2
        family = "Karim Benali;karim.benali@example.fr" if i == 0 else f"Famille {f};famille{f}@example.fr"
        phone = f"06 12 34 {f // 100:02d} {f % 100:02d}"
        second = f"Second {i};second{i}@example.fr" if i % 3 == 0 else ";"
        line = f"s-gen-{i:03d};Prénom{i};Nom{i};Classe {i % classes + 1:02d};{family};{phone};{second}"
        if len(lines) + 1 == bad_line:
            line = line.replace(f"second{i}@example.fr", "pas-une-adresse")
        lines.append(line)
    return "\n".join(lines) + "\n"


def stored_directory(db: Path) -> Directory:
    async def load() -> Directory:
        store = SQLiteStore(str(db))
        await store.open()
        try:
            return await store.load_directory()
        finally:
            await store.close()

    return asyncio.run(load())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with the demo school."""
    path = tmp_path / "liaison.db"

    async def seed() -> None:
        store = SQLiteStore(str(path))
        await store.open()
        await store.save_directory(demo_school())
        await store.close()

    asyncio.run(seed())
    return path


def run_import(db: Path, csv_file: Path, *options: str,
               school: str = SCHOOL_ID) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIAISON_STORE_URL": f"sqlite:///{db}"}
    env.pop("LIAISON_JWT_SECRET", None)  # the import needs no secret
    args = [sys.executable, "-m", "realtime.process.cli", "import", str(csv_file), "--school", school, *options]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=UNIT * 6, check=False)


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "export.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_import_of_300_students_in_12_classes(db: Path, tmp_path: Path) -> None:
    csv_file = write(tmp_path, school_export(), encoding="cp1252")  # an older spreadsheet's export
    started = time.perf_counter()
    done = run_import(db, csv_file)
    elapsed = time.perf_counter() - started
    print(f"\nCLI import of 300 students in 12 classes: {elapsed:.2f} s wall (process start included); "
          f"{' / '.join(done.stderr.split(chr(10))[1:3])}")
    assert done.returncode == 0, done.stderr
    assert "school ecole-jaures: imported 300 students" in done.stdout
    assert "classes created: 12" in done.stdout
    assert "planning 301 lines…" in done.stderr and "saved in" in done.stderr
    d = stored_directory(db)
    students = [s for s in d.students.values() if s.school_id == SCHOOL_ID]
    assert len(students) == 300  # the demo's four students, absent from the file, are gone
    assert len({s.class_id for s in students}) == 12
    assert d.students["s-gen-001"].name == "Prénom1 Nom1"
    assert d.students["s-gen-000"].guardians[0] == "p-adam"  # known by e-mail: same id
    assert "p-lea-mere" not in d.people  # no child left
    assert "t-martin" in d.people and "cp-a" in d.classes  # staff and classes are kept


def test_dry_run_says_what_would_change_and_writes_nothing(db: Path, tmp_path: Path) -> None:
    before = stored_directory(db)
    done = run_import(db, write(tmp_path, school_export()), "--dry-run", "--limit", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "school ecole-jaures: 300 students in the file"
    assert "would add 300 students: s-gen-000 (Prénom0 Nom0, classe-01), s-gen-001 (Prénom1 Nom1, classe-02), " \
           "and 298 more" in lines
    assert "would remove 4 students: s-adam (Adam Benali), s-hugo (Hugo Durand), and 2 more" in lines
    assert lines[-1] == "dry run: nothing was changed"
    assert stored_directory(db) == before


def test_a_bad_row_names_its_line_and_changes_nothing(db: Path, tmp_path: Path) -> None:
    before = stored_directory(db)
    done = run_import(db, write(tmp_path, school_export(bad_line=152)))
    assert done.returncode == 1
    assert done.stderr.splitlines()[-3:] == [
        "1 error in the file; nothing would be imported:",
        "  line 152: responsable2_email 'pas-une-adresse' is not an e-mail address",
        "nothing was changed",
    ]
    assert done.stdout == ""
    assert stored_directory(db) == before


def test_unknown_school_and_missing_file(db: Path, tmp_path: Path) -> None:
    done = run_import(db, write(tmp_path, school_export(3)), school="nowhere")
    assert done.returncode == 1
    assert "school 'nowhere' does not exist: create it before importing" in done.stderr
    missing = run_import(db, tmp_path / "missing.csv")
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr and "No such file" in missing.stderr


async def test_import_reaches_a_running_gateway_live(tmp_path: Path) -> None:
    """The CLI writes the store; the running gateway sees the directory version move, reloads, and
    moves its open connections: a guardian whose child changed class is subscribed to the new one
    and unsubscribed from the old one."""
    from tests.integration.conftest import token
    from tests.support.gateway_server import start_gateway
    from tests.support.ws_client import Client

    gateway = start_gateway(tmp_path, env={"LIAISON_DIRECTORY_POLL": "0.2"})
    client = await Client.open(gateway.ws)
    try:
        await client.ok("connect", token=token("p-adam"))
        export = (HEADER + "\n"
                  "s-adam;Adam;Benali;CE1 A;Karim Benali;karim.benali@example.fr;;;\n"
                  "s-lea;Léa;Petit;CP A;Claire Petit;claire.petit@example.fr;;"
                  "Julien Petit;julien.petit@example.fr\n")
        done = await asyncio.to_thread(run_import, tmp_path / "liaison.db", write(tmp_path, export))
        assert done.returncode == 0, done.stderr
        pushes = {(await client.push())["push"]: None for _ in range(2)}
        assert set(pushes) == {"subscribed", "unsubscribed"}
        assert await client.error("history", channel="class:cm2-b") == "forbidden"
        assert "messages" in await client.ok("history", channel="class:ce1-a")
    finally:
        await client.close()
        gateway.stop()
