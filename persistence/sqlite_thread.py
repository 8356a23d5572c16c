"""One SQLite connection owned by one worker thread, with a deadline on every operation.

The pattern of persistence/auth_sqlite.py, shared by the notification adapters
(persistence/push_sqlite.py, persistence/jobs_sqlite.py): no sqlite3 call runs on the event
loop; each write is one `BEGIN IMMEDIATE` transaction, so two processes on one file serialise
their compare-and-set steps; an operation still queued at its deadline is refused with
`StoreUnavailable` and never touches the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from persistence.store import StoreUnavailable

T = TypeVar("T")

_UNAVAILABLE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_PROTOCOL,
})


class SQLiteThread:
    def __init__(self, path: str, schema: str, name: str, *, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = 3.0, synchronous: str = "FULL") -> None:
        self.path = path
        self._schema = schema
        self._name = name
        self._busy_timeout_ms = busy_timeout_ms
        self._op_timeout = op_timeout
        self._synchronous = synchronous if synchronous in ("FULL", "NORMAL") else "FULL"
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self._name}: {exc}") from exc

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("BEGIN IMMEDIATE")
            for statement in self._schema.split(";"):
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

    async def call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `fn(connection)` on the thread, in a write transaction when `write`."""
        if self._executor is None:
            raise StoreUnavailable(f"{self._name} is not open")
        deadline = None if self._op_timeout is None else time.monotonic() + self._op_timeout

        def run() -> T:
            if deadline is not None and time.monotonic() > deadline:
                raise StoreUnavailable(f"{self._name}: operation not started before its deadline")
            conn = self._conn
            if conn is None:
                raise StoreUnavailable(f"{self._name} is closed")
            if deadline is not None:
                left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                conn.execute(f"PRAGMA busy_timeout = {min(left_ms, self._busy_timeout_ms)}")
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
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is not None and int(code) & 0xFF in _UNAVAILABLE_CODES:
                raise StoreUnavailable(f"{self._name}: {exc}") from exc
            raise
