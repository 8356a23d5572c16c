"""Pick the `UploadStore` adapter from the store URL (`LIAISON_STORE_URL`): beside the messages,
tables in the same SQLite file or collections in the same MongoDB database."""

from __future__ import annotations

from persistence.factory import locate
from persistence.upload_store import UploadStore
from persistence.uploads_mongo import MongoUploadStore
from persistence.uploads_sqlite import SQLiteUploadStore


def open_upload_store(url: str) -> UploadStore:
    where = locate(url)
    if where.kind == "sqlite":
        return SQLiteUploadStore(where.path)
    return MongoUploadStore(url, where.database)
