"""`SQLiteUploadStore`: the embedded `UploadStore`, tables `upload_*` and `image_consents` in the
message store's SQLite file (stdlib `sqlite3`), as persistence/auth_sqlite.py does for sign-in:
one connection owned by one worker thread (no sqlite3 call on the event loop), each write one
`BEGIN IMMEDIATE` transaction, each operation a deadline (`StoreUnavailable` past it).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from persistence.store import StoreUnavailable
from persistence.upload_store import Consent, Reference, Upload, Variant
from school.consent import ConsentState

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS upload_files (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    variants TEXT NOT NULL,
    attached INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS upload_files_owner ON upload_files (owner, created);
CREATE INDEX IF NOT EXISTS upload_files_unattached ON upload_files (created) WHERE attached = 0;
CREATE TABLE IF NOT EXISTS upload_refs (
    upload_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    students TEXT NOT NULL,
    PRIMARY KEY (upload_id, channel, seq)
);
CREATE INDEX IF NOT EXISTS upload_refs_channel ON upload_refs (channel, seq);
CREATE TABLE IF NOT EXISTS upload_ref_students (
    student_id TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (student_id, upload_id, channel, seq)
);
CREATE TABLE IF NOT EXISTS image_consents (
    student_id TEXT NOT NULL,
    guardian_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (student_id, guardian_id)
);
CREATE INDEX IF NOT EXISTS image_consents_guardian ON image_consents (guardian_id);
"""
_UPLOAD_COLUMNS = "id, owner, type, name, created, variants, attached"
_CHUNK = 500
DEFAULT_OP_TIMEOUT = 3.0


def _upload(row: tuple[Any, ...]) -> Upload:
    variants = {name: Variant.from_dict(v) for name, v in json.loads(row[5]).items()}
    return Upload(row[0], row[1], row[2], row[3], row[4], variants, bool(row[6]))


def _reference(row: tuple[Any, ...]) -> Reference:
    return Reference(row[0], row[1], row[2], tuple(json.loads(row[3])))


class SQLiteUploadStore:
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._op_timeout = op_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uploads-sqlite")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"upload store: {exc}") from exc

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._executor is None:
            raise StoreUnavailable("the upload store is not open")
        deadline = None if self._op_timeout is None else time.monotonic() + self._op_timeout

        def run() -> T:
            if deadline is not None and time.monotonic() > deadline:
                raise StoreUnavailable("upload store operation not started before its deadline")
            conn = self._conn
            if conn is None:
                raise StoreUnavailable("the upload store is closed")
            if not write:
                return fn(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            raise StoreUnavailable(f"upload store: {exc}") from exc

    # -- uploads --------------------------------------------------------------------------

    async def add_upload(self, upload: Upload) -> None:
        variants = json.dumps({name: v.to_dict() for name, v in upload.variants.items()})

        def add(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO upload_files ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (upload.id, upload.owner, upload.type, upload.name, upload.created, variants,
                          int(upload.attached)))

        await self._call(add, write=True)

    async def get_upload(self, upload_id: str) -> Upload | None:
        def get(conn: sqlite3.Connection) -> Upload | None:
            row = conn.execute(f"SELECT {_UPLOAD_COLUMNS} FROM upload_files WHERE id = ?", (upload_id,)).fetchone()
            return None if row is None else _upload(row)

        return await self._call(get, write=False)

    async def uploads_of(self, owner: str) -> list[Upload]:
        def read(conn: sqlite3.Connection) -> list[Upload]:
            rows = conn.execute(f"SELECT {_UPLOAD_COLUMNS} FROM upload_files WHERE owner = ? ORDER BY created, id",
                                (owner,)).fetchall()
            return [_upload(r) for r in rows]

        return await self._call(read, write=False)

    async def unattached_before(self, created: float, limit: int = 500) -> list[Upload]:
        def read(conn: sqlite3.Connection) -> list[Upload]:
            rows = conn.execute(f"SELECT {_UPLOAD_COLUMNS} FROM upload_files WHERE attached = 0 AND created < ? "
                                "ORDER BY created LIMIT ?", (created, limit)).fetchall()
            return [_upload(r) for r in rows]

        return await self._call(read, write=False)

    async def delete_upload(self, upload_id: str, *, only_unattached: bool = False) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            gone = conn.execute("DELETE FROM upload_files WHERE id = ?" + (" AND attached = 0" if only_unattached
                                                                          else ""), (upload_id,)).rowcount
            if not gone:
                return False
            conn.execute("DELETE FROM upload_refs WHERE upload_id = ?", (upload_id,))
            conn.execute("DELETE FROM upload_ref_students WHERE upload_id = ?", (upload_id,))
            return gone > 0

        return await self._call(delete, write=True)

    # -- references ----------------------------------------------------------------------

    async def add_references(self, references: Iterable[Reference]) -> None:
        refs = list(references)
        if not refs:
            return

        def add(conn: sqlite3.Connection) -> None:
            for ref in refs:
                key = (ref.upload_id, ref.channel, ref.seq)
                conn.execute("DELETE FROM upload_ref_students WHERE upload_id = ? AND channel = ? AND seq = ?",
                             key)
                conn.execute("INSERT OR REPLACE INTO upload_refs (upload_id, channel, seq, students) "
                             "VALUES (?, ?, ?, ?)", (*key, json.dumps(list(ref.students))))
                conn.executemany("INSERT OR IGNORE INTO upload_ref_students (student_id, upload_id, channel, seq) "
                                 "VALUES (?, ?, ?, ?)", [(s, *key) for s in ref.students])
                conn.execute("UPDATE upload_files SET attached = 1 WHERE id = ?", (ref.upload_id,))

        await self._call(add, write=True)

    async def delete_references(self, references: Iterable[Reference]) -> None:
        keys = [(r.upload_id, r.channel, r.seq) for r in references]

        def delete(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM upload_refs WHERE upload_id = ? AND channel = ? AND seq = ?", keys)
            conn.executemany("DELETE FROM upload_ref_students WHERE upload_id = ? AND channel = ? AND seq = ?",
                             keys)

        if keys:
            await self._call(delete, write=True)

    async def references(self, upload_id: str) -> list[Reference]:
        def read(conn: sqlite3.Connection) -> list[Reference]:
            rows = conn.execute("SELECT upload_id, channel, seq, students FROM upload_refs WHERE upload_id = ? "
                                "ORDER BY channel, seq", (upload_id,)).fetchall()
            return [_reference(r) for r in rows]

        return await self._call(read, write=False)

    async def references_in(self, channels: Iterable[str]) -> list[Reference]:
        names = list(dict.fromkeys(channels))

        def read(conn: sqlite3.Connection) -> list[Reference]:
            out: list[Reference] = []
            for i in range(0, len(names), _CHUNK):
                part = names[i:i + _CHUNK]
                marks = ", ".join("?" * len(part))
                rows = conn.execute(f"SELECT upload_id, channel, seq, students FROM upload_refs WHERE channel IN "
                                    f"({marks}) ORDER BY channel, seq", part).fetchall()
                out += [_reference(r) for r in rows]
            return out

        return await self._call(read, write=False)

    async def references_of_student(self, student_id: str) -> list[Reference]:
        def read(conn: sqlite3.Connection) -> list[Reference]:
            rows = conn.execute(
                "SELECT r.upload_id, r.channel, r.seq, r.students FROM upload_ref_students s JOIN upload_refs r "
                "ON r.upload_id = s.upload_id AND r.channel = s.channel AND r.seq = s.seq "
                "WHERE s.student_id = ? ORDER BY r.channel, r.seq", (student_id,)).fetchall()
            return [_reference(r) for r in rows]

        return await self._call(read, write=False)

    # -- image consents ------------------------------------------------------------------

    async def set_consent(self, consent: Consent) -> ConsentState:
        def put(conn: sqlite3.Connection) -> ConsentState:
            row = conn.execute("SELECT state FROM image_consents WHERE student_id = ? AND guardian_id = ?",
                               (consent.student_id, consent.guardian_id)).fetchone()
            conn.execute("INSERT OR REPLACE INTO image_consents (student_id, guardian_id, state, updated) "
                         "VALUES (?, ?, ?, ?)",
                         (consent.student_id, consent.guardian_id, consent.state.value, consent.updated))
            return ConsentState.NOT_ASKED if row is None else ConsentState(row[0])

        return await self._call(put, write=True)

    async def consents(self, student_ids: Iterable[str]) -> dict[str, dict[str, ConsentState]]:
        ids = list(dict.fromkeys(student_ids))

        def read(conn: sqlite3.Connection) -> dict[str, dict[str, ConsentState]]:
            out: dict[str, dict[str, ConsentState]] = {}
            for i in range(0, len(ids), _CHUNK):
                part = ids[i:i + _CHUNK]
                marks = ", ".join("?" * len(part))
                for student, guardian, state in conn.execute(
                        f"SELECT student_id, guardian_id, state FROM image_consents WHERE student_id IN ({marks})",
                        part):
                    out.setdefault(student, {})[guardian] = ConsentState(state)
            return out

        return await self._call(read, write=False)

    async def consents_by(self, guardian_id: str) -> list[Consent]:
        def read(conn: sqlite3.Connection) -> list[Consent]:
            rows = conn.execute("SELECT student_id, guardian_id, state, updated FROM image_consents "
                                "WHERE guardian_id = ? ORDER BY student_id", (guardian_id,)).fetchall()
            return [Consent(r[0], r[1], ConsentState(r[2]), r[3]) for r in rows]

        return await self._call(read, write=False)

    async def erase_consents_by(self, guardian_id: str, *, dry_run: bool = False) -> int:
        def erase(conn: sqlite3.Connection) -> int:
            if dry_run:
                row = conn.execute("SELECT COUNT(*) FROM image_consents WHERE guardian_id = ?",
                                   (guardian_id,)).fetchone()
                return int(row[0])
            return conn.execute("DELETE FROM image_consents WHERE guardian_id = ?", (guardian_id,)).rowcount

        return await self._call(erase, write=not dry_run)
