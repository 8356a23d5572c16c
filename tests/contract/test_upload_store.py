"""The `UploadStore` contract (persistence/upload_store.py): upload records, where messages
reference them, and image consents, run on a real SQLite file (beside the message store's
tables) and on the MongoDB at `LIAISON_TEST_MONGODB_URL` (skipped, saying so, without one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.factory import open_upload_store
from persistence.sqlite import SQLiteStore
from persistence.upload_store import Consent, Reference, Upload, UploadStore, Variant
from persistence.uploads_mongo import MongoUploadStore
from persistence.uploads_sqlite import SQLiteUploadStore
from school.consent import ConsentState
from tests.contract.conftest import mongodb_database

MONGODB_SKIP = (
    "MongoDB UploadStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)
T0 = 1_800_000_000.0
UploadFactory = Callable[[], UploadStore]


@pytest.fixture(params=["sqlite", "mongodb"])
async def upload_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UploadFactory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLiteUploadStore(path)
        return
    async with mongodb_database("liaison_upload_test", MONGODB_SKIP) as (url, database):
        yield lambda: MongoUploadStore(url, database)


@pytest.fixture
async def uploads(upload_backend: UploadFactory) -> AsyncIterator[UploadStore]:
    store = upload_backend()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def photo(upload_id: str, owner: str = "t-martin", created: float = T0) -> Upload:
    return Upload(upload_id, owner, "image/jpeg", "sortie.jpg", created, {
        "original": Variant("a" * 32, "image/jpeg", 1000, 800, 600),
        "thumb": Variant("b" * 32, "image/jpeg", 100, 320, 240),
    })


async def test_an_upload_is_stored_and_read_back(uploads: UploadStore) -> None:
    upload = photo("u" * 20)
    await uploads.add_upload(upload)
    assert await uploads.get_upload(upload.id) == upload
    assert await uploads.get_upload("v" * 20) is None
    assert (await uploads.uploads_of("t-martin")) == [upload]
    assert await uploads.uploads_of("someone-else") == []


async def test_references_mark_the_upload_attached_and_find_it_by_student(uploads: UploadStore) -> None:
    a, b = photo("a" * 20), photo("b" * 20, created=T0 + 1)
    await uploads.add_upload(a)
    await uploads.add_upload(b)
    assert {u.id for u in await uploads.unattached_before(T0 + 10)} == {a.id, b.id}
    await uploads.add_references([Reference(a.id, "class:cm1", 4, ("s-lea", "s-hugo"))])
    got = await uploads.get_upload(a.id)
    assert got is not None and got.attached
    assert [u.id for u in await uploads.unattached_before(T0 + 10)] == [b.id]
    assert await uploads.unattached_before(T0) == []  # created at T0: not before
    assert await uploads.references(a.id) == [Reference(a.id, "class:cm1", 4, ("s-lea", "s-hugo"))]
    assert await uploads.references_of_student("s-hugo") == [Reference(a.id, "class:cm1", 4, ("s-lea", "s-hugo"))]
    # an edit of the message lists other students: the reference is replaced
    await uploads.add_references([Reference(a.id, "class:cm1", 4, ("s-lea",))])
    assert await uploads.references_of_student("s-hugo") == []
    assert await uploads.references_of_student("s-lea") == [Reference(a.id, "class:cm1", 4, ("s-lea",))]


async def test_references_by_channel_and_their_deletion(uploads: UploadStore) -> None:
    a, b = photo("a" * 20), photo("b" * 20)
    for u in (a, b):
        await uploads.add_upload(u)
    first, second, third = (Reference(a.id, "class:cm1", 1, ("s-lea",)), Reference(a.id, "class:cm2", 2, ()),
                            Reference(b.id, "school:x", 3, ()))
    await uploads.add_references([first, second, third])
    assert await uploads.references_in(["class:cm1", "school:x"]) == [first, third]
    assert await uploads.references_in([]) == []
    await uploads.delete_references([first])
    assert await uploads.references(a.id) == [second]
    assert await uploads.references_of_student("s-lea") == []


async def test_delete_removes_the_record_and_its_references(uploads: UploadStore) -> None:
    a = photo("a" * 20)
    await uploads.add_upload(a)
    await uploads.add_references([Reference(a.id, "class:cm1", 1, ("s-lea",))])
    assert await uploads.delete_upload(a.id) is True
    assert await uploads.get_upload(a.id) is None
    assert await uploads.references(a.id) == []
    assert await uploads.references_of_student("s-lea") == []
    assert await uploads.delete_upload(a.id) is False


async def test_only_unattached_deletes_keep_an_upload_a_message_carries(uploads: UploadStore) -> None:
    a, b = photo("a" * 20), photo("b" * 20)
    await uploads.add_upload(a)
    await uploads.add_upload(b)
    await uploads.add_references([Reference(a.id, "class:cm1", 1, ())])
    assert await uploads.delete_upload(a.id, only_unattached=True) is False
    assert await uploads.get_upload(a.id) is not None
    assert await uploads.references(a.id) != []
    assert await uploads.delete_upload(b.id, only_unattached=True) is True
    assert await uploads.get_upload(b.id) is None


async def test_consents_are_per_student_and_guardian(uploads: UploadStore) -> None:
    assert await uploads.consents(["s-lea"]) == {}
    before = await uploads.set_consent(Consent("s-lea", "p-lea-mere", ConsentState.GRANTED, T0))
    assert before is ConsentState.NOT_ASKED
    await uploads.set_consent(Consent("s-lea", "p-lea-pere", ConsentState.REFUSED, T0))
    await uploads.set_consent(Consent("s-hugo", "p-lea-mere", ConsentState.GRANTED, T0))
    assert await uploads.consents(["s-lea", "s-nobody"]) == {
        "s-lea": {"p-lea-mere": ConsentState.GRANTED, "p-lea-pere": ConsentState.REFUSED}}
    before = await uploads.set_consent(Consent("s-lea", "p-lea-pere", ConsentState.GRANTED, T0 + 5))
    assert before is ConsentState.REFUSED
    assert (await uploads.consents(["s-lea"]))["s-lea"]["p-lea-pere"] is ConsentState.GRANTED
    given = await uploads.consents_by("p-lea-mere")
    assert [(c.student_id, c.state) for c in given] == [("s-hugo", ConsentState.GRANTED),
                                                         ("s-lea", ConsentState.GRANTED)]
    assert await uploads.erase_consents_by("p-lea-mere", dry_run=True) == 2
    assert len(await uploads.consents_by("p-lea-mere")) == 2
    assert await uploads.erase_consents_by("p-lea-mere") == 2
    assert await uploads.consents_by("p-lea-mere") == []
    assert (await uploads.consents(["s-lea"]))["s-lea"] == {"p-lea-pere": ConsentState.GRANTED}


async def test_records_outlive_the_store_object(upload_backend: UploadFactory) -> None:
    first = upload_backend()
    await first.open()
    await first.add_upload(photo("k" * 20))
    await first.close()
    second = upload_backend()
    await second.open()
    try:
        assert await second.get_upload("k" * 20) == photo("k" * 20)
    finally:
        await second.close()


async def test_the_tables_share_the_message_store_file(tmp_path: Path) -> None:
    path = str(tmp_path / "liaison.db")
    messages = SQLiteStore(path)
    await messages.open()
    store = open_upload_store(f"sqlite:///{path}")
    assert isinstance(store, SQLiteUploadStore)
    await store.open()
    try:
        await store.add_upload(photo("s" * 20))
        assert await store.get_upload("s" * 20) is not None
        assert await messages.latest_seqs(["class:cm1"]) in ({}, {"class:cm1": 0})
    finally:
        await store.close()
        await messages.close()
