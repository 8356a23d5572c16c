"""Pick the `AuditStore` adapter from the store URL (`LIAISON_STORE_URL`): the audit log lives
beside the messages, table `audit_log` in the SQLite file or collection `audit_log` in the
MongoDB database."""

from __future__ import annotations

from persistence.audit_mongo import MongoAuditStore
from persistence.audit_sqlite import SQLiteAuditStore
from persistence.audit_store import AuditStore
from persistence.factory import locate


def open_audit_store(url: str, *, retention_days: float = 365, op_timeout: float | None = 3.0) -> AuditStore:
    """The `AuditStore` for a store URL, unopened: `await store.open()`."""
    where = locate(url)
    if where.kind == "sqlite":
        return SQLiteAuditStore(where.path, retention_days=retention_days, op_timeout=op_timeout)
    return MongoAuditStore(url, where.database, op_timeout=op_timeout)
