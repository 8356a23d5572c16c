"""Pick the `AuditStore` and `PrivacyStore` adapters from the store URL (`LIAISON_STORE_URL`):
they live beside the messages, tables `audit_log` and `privacy_*` in the SQLite file or
collections of those names in the MongoDB database."""

from __future__ import annotations

from persistence.audit_mongo import MongoAuditStore
from persistence.audit_sqlite import SQLiteAuditStore
from persistence.audit_store import AuditStore
from persistence.factory import locate
from persistence.privacy_mongo import MongoPrivacyStore
from persistence.privacy_sqlite import SQLitePrivacyStore
from persistence.privacy_store import PrivacyStore


def open_audit_store(url: str, *, retention_days: float = 365, op_timeout: float | None = 3.0) -> AuditStore:
    """The `AuditStore` for a store URL, unopened: `await store.open()`."""
    where = locate(url)
    if where.kind == "sqlite":
        return SQLiteAuditStore(where.path, retention_days=retention_days, op_timeout=op_timeout)
    return MongoAuditStore(url, where.database, op_timeout=op_timeout)


def open_privacy_store(url: str, *, op_timeout: float | None = 3.0) -> PrivacyStore:
    """The `PrivacyStore` for a store URL, unopened: `await store.open()`."""
    where = locate(url)
    if where.kind == "sqlite":
        return SQLitePrivacyStore(where.path, op_timeout=op_timeout)
    return MongoPrivacyStore(url, where.database, op_timeout=op_timeout)
