"""`GridFSBlobStore`: blobs in MongoDB GridFS (bucket `files` in the message store's database),
through PyMongo's native async API (`gridfs.AsyncGridFSBucket`), never Motor.

A blob's GridFS file id is its key. GridFS writes the chunks first and the file document last
(on close), so a blob whose upload failed is absent (its stray chunks are aborted). Reads seek
to the range's start and stream GridFS chunks. Writes are acknowledged by a majority; a blob's
operations get a longer deadline than the message store's (`op_timeout`, default 60 s: a
50 MB PDF), and "cannot serve this now" errors become `StoreUnavailable` as in
persistence/mongo.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile

from persistence.blob_store import CHUNK, check_key
from persistence.mongo import open_database, unavailable_errors

Doc = dict[str, Any]
BUCKET = "files"


class GridFSBlobStore:
    def __init__(self, url: str, database: str = "liaison", *, op_timeout: float | None = 60.0) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._bucket = AsyncGridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=CHUNK)
        self._db = db
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, "the GridFS blob store"):
            await self._client.aconnect()

    async def close(self) -> None:
        self.closed = True
        await self._client.close()

    async def put(self, key: str, source: str) -> int:
        check_key(key)
        with unavailable_errors(self, "the GridFS blob store"):
            stream = self._bucket.open_upload_stream_with_id(key, key)
            size = 0
            try:
                with open(source, "rb") as handle:  # noqa: ASYNC230 - each read is off the loop below
                    while chunk := await asyncio.to_thread(handle.read, CHUNK):
                        await stream.write(chunk)
                        size += len(chunk)
            except BaseException:
                await stream.abort()
                raise
            await stream.close()
            return size

    async def size(self, key: str) -> int | None:
        check_key(key)
        with unavailable_errors(self, "the GridFS blob store"):
            doc = await self._db[f"{BUCKET}.files"].find_one({"_id": key}, {"length": True})
        return None if doc is None else int(doc["length"])

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        with unavailable_errors(self, "the GridFS blob store"):
            try:
                out = await self._bucket.open_download_stream(key)
            except NoFile:
                raise KeyError(key) from None
        try:
            await out.seek(start)
            left = None if end is None else max(end - start, 0)
            while left is None or left > 0:
                with unavailable_errors(self, "the GridFS blob store"):
                    chunk = await out.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            await out.close()

    async def delete(self, key: str) -> bool:
        check_key(key)
        with unavailable_errors(self, "the GridFS blob store"):
            try:
                await self._bucket.delete(key)
            except NoFile:
                return False
        return True
