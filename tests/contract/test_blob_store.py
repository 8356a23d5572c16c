"""The `BlobStore` contract (persistence/blob_store.py), run against every adapter.

- "directory": a real directory in the test's `tmp_path` (the embedded default, `<db>.files/`);
- "gridfs": GridFS on the MongoDB at `LIAISON_TEST_MONGODB_URL`, a fresh database per test,
  dropped afterwards (skipped, saying so, when the variable is unset).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.blob_dir import DirectoryBlobStore
from persistence.blob_gridfs import GridFSBlobStore
from persistence.blob_store import CHUNK, BlobStore, check_key, new_key
from persistence.factory import open_blob_store
from tests.contract.conftest import mongodb_database

MONGODB_SKIP = (
    "GridFS BlobStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)

BlobFactory = Callable[[], BlobStore]


@pytest.fixture(params=["directory", "gridfs"])
async def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobFactory]:
    if request.param == "directory":
        root = str(tmp_path / "liaison.db.files")
        yield lambda: DirectoryBlobStore(root)
        return
    async with mongodb_database("liaison_blob_test", MONGODB_SKIP) as (url, database):
        yield lambda: GridFSBlobStore(url, database)


@pytest.fixture
async def blobs(blob_backend: BlobFactory) -> AsyncIterator[BlobStore]:
    store = blob_backend()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def source(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / f"src-{len(data)}-{os.urandom(4).hex()}"
    path.write_bytes(data)
    return str(path)


async def read_all(blobs: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in blobs.read(key, start, end)])


async def test_a_blob_put_is_read_back_whole(blobs: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(CHUNK * 2 + 1234)  # more than one chunk, not a multiple of it
    key = new_key()
    assert await blobs.put(key, source(tmp_path, data)) == len(data)
    assert await blobs.size(key) == len(data)
    assert await read_all(blobs, key) == data


async def test_ranges_are_read_exactly(blobs: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(CHUNK + 500)
    key = new_key()
    await blobs.put(key, source(tmp_path, data))
    assert await read_all(blobs, key, 10, 20) == data[10:20]
    assert await read_all(blobs, key, CHUNK - 3, CHUNK + 7) == data[CHUNK - 3:CHUNK + 7]
    assert await read_all(blobs, key, len(data) - 5) == data[-5:]
    assert await read_all(blobs, key, 7, 7) == b""
    chunks = [c async for c in blobs.read(key)]
    assert all(len(c) <= CHUNK for c in chunks)


async def test_an_empty_blob_is_a_blob(blobs: BlobStore, tmp_path: Path) -> None:
    key = new_key()
    assert await blobs.put(key, source(tmp_path, b"")) == 0
    assert await blobs.size(key) == 0
    assert await read_all(blobs, key) == b""


async def test_a_missing_blob_has_no_size_and_raises_key_error_when_read(blobs: BlobStore) -> None:
    key = new_key()
    assert await blobs.size(key) is None
    with pytest.raises(KeyError):
        await read_all(blobs, key)
    assert await blobs.delete(key) is False


async def test_delete_removes_the_blob_only(blobs: BlobStore, tmp_path: Path) -> None:
    a, b = new_key(), new_key()
    await blobs.put(a, source(tmp_path, b"first"))
    await blobs.put(b, source(tmp_path, b"second"))
    assert await blobs.delete(a) is True
    assert await blobs.size(a) is None
    assert await read_all(blobs, b) == b"second"


async def test_blobs_outlive_the_store_object(blob_backend: BlobFactory, tmp_path: Path) -> None:
    first = blob_backend()
    await first.open()
    key = new_key()
    await first.put(key, source(tmp_path, b"kept"))
    await first.close()
    second = blob_backend()
    await second.open()
    try:
        assert await read_all(second, key) == b"kept"
    finally:
        await second.close()


async def test_keys_are_never_paths(blobs: BlobStore, tmp_path: Path) -> None:
    for bad in ("../../etc/passwd", "ABCDEF" * 6, "", "a" * 31):
        with pytest.raises(ValueError):
            check_key(bad)
        with pytest.raises(ValueError):
            await blobs.put(bad, source(tmp_path, b"x"))
    assert new_key() != new_key()
    check_key(new_key())


async def test_the_directory_store_writes_atomically_under_random_names(tmp_path: Path) -> None:
    root = tmp_path / "db.files"
    store = DirectoryBlobStore(str(root))
    await store.open()
    key = new_key()
    await store.put(key, source(tmp_path, b"photo bytes"))
    files = [p for p in root.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [key]  # no temporary file left, no file name of the upload
    (root / key[:2] / ".tmp-crashed").write_bytes(b"half")  # a crash in the middle of a write
    await store.close()
    again = DirectoryBlobStore(str(root))
    await again.open()  # cleans what a crash left
    assert [p.name for p in root.rglob("*") if p.is_file()] == [key]


def test_the_blob_store_sits_beside_the_sqlite_file(tmp_path: Path) -> None:
    store = open_blob_store(f"sqlite:///{tmp_path}/liaison.db")
    assert isinstance(store, DirectoryBlobStore)
    assert store.root == Path(f"{tmp_path}/liaison.db.files")
    assert isinstance(open_blob_store("mongodb://127.0.0.1:1/school"), GridFSBlobStore)
