"""A store file written by the first version opens in this one, its chats gaining the
household columns (schema 2), with every row kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from persistence.sqlite import SQLiteStore

V1_CHATS = """CREATE TABLE chats (
    id TEXT PRIMARY KEY, school_id TEXT NOT NULL, student_id TEXT NOT NULL,
    staff_id TEXT NOT NULL
) WITHOUT ROWID"""


async def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.execute(V1_CHATS)
        conn.execute("INSERT INTO chats VALUES ('s-lea~t-martin', 'ecole-jaures', 's-lea', 't-martin')")
        conn.execute("PRAGMA user_version = 1")
    store = SQLiteStore(str(path))
    await store.open()
    try:
        chat = (await store.load_directory()).chats["s-lea~t-martin"]
        assert (chat.staff_id, chat.guardian_id, chat.closed) == ("t-martin", None, False)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
