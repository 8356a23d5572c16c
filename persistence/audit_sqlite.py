"""`SQLiteAuditStore`: the embedded `AuditStore`, table `audit_log` in the store's SQLite file.

Append-only by triggers: `audit_log_no_update` refuses every UPDATE, `audit_log_no_delete`
every DELETE of an entry younger than the retention period (`audit_policy.retention_days`,
set from `LIAISON_AUDIT_RETENTION_DAYS` when the store opens), measured against SQLite's own
clock. So a mistaken query, a bug or a hurried operator cannot rewrite the history; someone
who can edit the file itself can of course drop triggers (that is the file's permissions).

Threads and deadlines as in persistence/auth_sqlite.py: one connection on one worker thread,
one `BEGIN IMMEDIATE` transaction per write, `StoreUnavailable` past the deadline.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from persistence.audit_store import AuditEntry
from persistence.sqlite_worker import DEFAULT_OP_TIMEOUT, SQLiteWorker

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        school TEXT,
        details TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_school ON audit_log (school, id)",
    "CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target, id)",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
    """CREATE TABLE IF NOT EXISTS audit_policy (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        retention_days REAL NOT NULL CHECK (retention_days >= 1)
    )""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN
        SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be changed');
    END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN OLD.at >= CAST(strftime('%s', 'now') AS REAL)
                  - COALESCE((SELECT retention_days FROM audit_policy WHERE id = 1), 365) * 86400.0
    BEGIN
        SELECT RAISE(ABORT, 'audit_log is append-only: only entries past the retention period can go');
    END""",
)
_COLUMNS = "id, at, actor, action, target, school, details"


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[0])


class SQLiteAuditStore:
    def __init__(self, path: str, *, retention_days: float = 365, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self.path = path
        self.retention_days = retention_days
        self._db = SQLiteWorker(path, "audit-sqlite", SCHEMA, busy_timeout_ms=busy_timeout_ms,
                                op_timeout=op_timeout, setup=self._set_policy, secure_delete=True)

    def _set_policy(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO audit_policy (id, retention_days) VALUES (1, ?) "
                     "ON CONFLICT (id) DO UPDATE SET retention_days = excluded.retention_days",
                     (self.retention_days,))

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def append(self, entry: AuditEntry) -> int:
        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO audit_log (at, actor, action, target, school, details) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.at, entry.actor, entry.action, entry.target, entry.school,
                 json.dumps(entry.details, sort_keys=True)))
            return int(cursor.lastrowid or 0)

        return await self._db.call(insert, write=True)

    async def append_many(self, entries: list[AuditEntry]) -> None:
        rows = [(e.at, e.actor, e.action, e.target, e.school, json.dumps(e.details, sort_keys=True))
                for e in entries]
        if rows:
            await self._db.call(lambda c: c.executemany(
                "INSERT INTO audit_log (at, actor, action, target, school, details) VALUES (?, ?, ?, ?, ?, ?)",
                rows), write=True)

    async def entries(self, *, school: str | None = None, target: str | None = None,
                      before: int | None = None, limit: int = 100) -> list[AuditEntry]:
        clauses: list[str] = []
        args: list[object] = []
        if school is not None:
            clauses.append("school = ?")
            args.append(school)
        if target is not None:
            clauses.append("target = ?")
            args.append(target)
        if before is not None:
            clauses.append("id < ?")
            args.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""

        def read(conn: sqlite3.Connection) -> list[AuditEntry]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY id DESC LIMIT ?",
                                (*args, max(0, limit))).fetchall()
            return [_entry(r) for r in rows]

        return await self._db.call(read, write=False)

    async def purge(self, before: float) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            # never asks the triggers for more than they allow: the bound is also SQLite's own
            cursor = conn.execute(
                "DELETE FROM audit_log WHERE at < ? AND at < CAST(strftime('%s', 'now') AS REAL)"
                " - (SELECT retention_days FROM audit_policy WHERE id = 1) * 86400.0", (before,))
            return cursor.rowcount

        return await self._db.call(delete, write=True)

