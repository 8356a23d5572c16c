"""`liaison import` tells the privacy records what it did (issue 15): the people it took out of
the directory are leavers from now (erased three months later unless back), and the audit
log has its `imported` entry. `liaison privacy erase` then erases one of them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from persistence.audit_sqlite import SQLiteAuditStore
from persistence.privacy_sqlite import SQLitePrivacyStore
from school.demo import SCHOOL_ID
from tests.integration.test_import_cli import db, run_import, school_export, write  # noqa: F401 (fixture)
from tests.support.waiting import UNIT


def records(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    async def read() -> tuple[list[str], list[tuple[str, str]]]:
        privacy, audit = SQLitePrivacyStore(str(path)), SQLiteAuditStore(str(path))
        await privacy.open()
        await audit.open()
        try:
            return ([lv.person_id for lv in await privacy.leavers()],
                    [(e.action, e.actor) for e in await audit.entries(school=SCHOOL_ID)])
        finally:
            await privacy.close()
            await audit.close()

    return asyncio.run(read())


def test_an_import_records_its_leavers_and_an_audit_entry(db: Path, tmp_path: Path) -> None:  # noqa: F811
    done = run_import(db, write(tmp_path, school_export(students=4, classes=2)))
    assert done.returncode == 0, done.stderr
    leavers, audit = records(db)
    assert {"p-lea-mere", "p-lea-pere", "p-durand"} <= set(leavers)
    assert "p-adam" not in leavers, "still a guardian in the file"
    assert audit == [("imported", "cli")]
    dry = run_import(db, write(tmp_path, school_export(students=4, classes=2)), "--dry-run")
    assert dry.returncode == 0 and records(db)[1] == [("imported", "cli")], "a dry run records nothing"

    env = {**os.environ, "LIAISON_STORE_URL": f"sqlite:///{db}", "LIAISON_JWT_SECRET": "s" * 40}
    erased = subprocess.run([sys.executable, "-m", "realtime.process.cli", "privacy", "erase", "p-durand"],
                            env=env, capture_output=True, text=True, timeout=UNIT * 8, check=False)
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["dry_run"] is False
    leavers, audit = records(db)
    assert "p-durand" not in leavers, "erased: not a leaver any more"
    assert ("erased", "cli") in audit, "filed under the school they left"
