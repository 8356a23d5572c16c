"""Pick the `NotificationStore` adapter from the store URL (`LIAISON_STORE_URL`).

Quiet hours, preferences, digest entries and scheduled posts live beside the messages: in the
same SQLite file (tables `notify_*`, through a connection of their own) or the same MongoDB
database (collections `notify_*`).
"""

from __future__ import annotations

from persistence.factory import locate
from persistence.notification_mongo import MongoNotificationStore
from persistence.notification_sqlite import SQLiteNotificationStore
from persistence.notification_store import NotificationStore


def open_notification_store(url: str, *, op_timeout: float | None = 3.0) -> NotificationStore:
    """The `NotificationStore` for a store URL, unopened: `await store.open()`."""
    where = locate(url)
    if where.kind == "sqlite":
        return SQLiteNotificationStore(where.path, op_timeout=op_timeout)
    return MongoNotificationStore(url, where.database, op_timeout=op_timeout)
