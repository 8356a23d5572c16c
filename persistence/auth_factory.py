"""Pick the `AuthStore` adapter from the store URL (`LIAISON_STORE_URL`).

The URLs are those of persistence/factory.py: the sign-in records live beside the messages,
in the same SQLite file (tables `auth_*`, written through connections of their own) or the
same MongoDB database (collections `auth_*`). `:memory:` is refused for the same reason.
"""

from __future__ import annotations

from persistence.auth_mongo import MongoAuthStore
from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import AuthStore
from persistence.factory import locate


def open_auth_store(url: str, *, op_timeout: float | None = 3.0) -> AuthStore:
    """The `AuthStore` for a store URL (`LIAISON_STORE_URL`), unopened: `await store.open()`.
    `op_timeout` is each operation's deadline in seconds."""
    where = locate(url)
    if where.kind == "sqlite":
        return SQLiteAuthStore(where.path, op_timeout=op_timeout)
    return MongoAuthStore(url, where.database, op_timeout=op_timeout)
