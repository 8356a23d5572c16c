"""Pick the `BlobStore` adapter from the store URL (`LIAISON_STORE_URL`): files live beside
the messages, in a directory `<sqlite file>.files/` or in GridFS in the same MongoDB database."""

from __future__ import annotations

from persistence.blob_dir import DirectoryBlobStore
from persistence.blob_gridfs import GridFSBlobStore
from persistence.blob_store import BlobStore
from persistence.factory import locate


def open_blob_store(url: str) -> BlobStore:
    """The blob store of a store URL, unopened: `await blobs.open()`."""
    where = locate(url)
    if where.kind == "sqlite":
        return DirectoryBlobStore(where.path + ".files")
    return GridFSBlobStore(url, where.database)
