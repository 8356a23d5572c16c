"""The uploads service over real stores (a SQLite file, the blob directory beside it): uploads
never attached are swept after a day, and the privacy section exports a person's uploads (with
their bytes) and consents and erases them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from persistence.blob_dir import DirectoryBlobStore
from persistence.sqlite import SQLiteStore
from persistence.upload_store import Consent, Reference
from persistence.uploads_sqlite import SQLiteUploadStore
from realtime.services.imaging import ImagingPool
from realtime.services.uploads import UNATTACHED_TTL, Uploads, UploadsPrivacy
from school.consent import ConsentState
from school.demo import demo_school
from school.directory import Directory
from school.messages import Author, Draft
from tests.support.clock import FakeClock

PDF = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Uploads, FakeClock]]:
    path = str(tmp_path / "liaison.db")
    store, uploads, blobs = SQLiteStore(path), SQLiteUploadStore(path), DirectoryBlobStore(path + ".files")
    for part in (store, uploads, blobs):
        await part.open()
    directory = Directory()
    directory.put(*demo_school())
    clock = FakeClock()
    imaging = ImagingPool(1)
    try:
        yield Uploads(uploads, blobs, store, directory, imaging, clock), clock
    finally:
        imaging.close()
        for part in (blobs, uploads, store):
            await part.close()


def spooled(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "spooled"
    path.write_bytes(data)
    return str(path)


async def test_uploads_never_attached_are_removed_after_a_day(service: tuple[Uploads, FakeClock],
                                                             tmp_path: Path) -> None:
    uploads, clock = service
    teacher = uploads.directory.people["t-martin"]
    kept = await uploads.take(teacher, spooled(tmp_path, PDF), "application/pdf", "menu.pdf")
    dropped = await uploads.take(teacher, spooled(tmp_path, PDF), "application/pdf", "brouillon.pdf")
    await uploads.uploads.add_references([Reference(kept.id, "class:cp-a", 1, ())])
    clock.advance(UNATTACHED_TTL - 1)
    assert await uploads.sweep() == 0
    clock.advance(2)
    assert await uploads.sweep() == 1
    assert await uploads.uploads.get_upload(dropped.id) is None
    assert await uploads.blobs.size(dropped.variants["original"].key) is None
    assert await uploads.blobs.size(kept.variants["original"].key) == len(PDF)


async def test_the_privacy_section_exports_files_and_consents_and_erases_them(
        service: tuple[Uploads, FakeClock], tmp_path: Path) -> None:
    uploads, clock = service
    parent = uploads.directory.people["p-durand"]
    mine = await uploads.take(parent, spooled(tmp_path, PDF), "application/pdf", "certificat médical.pdf")
    teacher = uploads.directory.people["t-martin"]
    other = await uploads.take(teacher, spooled(tmp_path, PDF), "application/pdf", "x.pdf")
    await uploads.uploads.set_consent(Consent("s-hugo", "p-durand", ConsentState.GRANTED, clock()))
    await uploads.uploads.set_consent(Consent("s-lea", "p-lea-mere", ConsentState.REFUSED, clock()))
    section = UploadsPrivacy(uploads)
    exported = await section.export("p-durand")
    assert isinstance(exported, dict)
    assert [f["id"] for f in exported["files"]] == [mine.id]
    assert exported["files"][0]["name"] == "certificat medical.pdf"
    assert exported["image_consents"] == [{"student_id": "s-hugo", "state": "granted", "updated": clock()}]
    files = [(name, b"".join([c async for c in chunks])) async for name, chunks in section.files("p-durand")]
    assert files == [(f"{mine.id}-certificat medical.pdf", PDF)]
    assert await section.erase("p-durand", dry_run=True) == 2
    assert await uploads.uploads.get_upload(mine.id) is not None
    assert await section.erase("p-durand", dry_run=False) == 2
    assert await uploads.uploads.get_upload(mine.id) is None
    assert await uploads.blobs.size(mine.variants["original"].key) is None
    assert await uploads.uploads.consents_by("p-durand") == []
    assert await uploads.uploads.get_upload(other.id) is not None  # nobody else's
    assert await section.erase("p-durand", dry_run=False) == 0


async def test_the_year_purge_removes_uploads_carried_only_by_purged_messages(
        service: tuple[Uploads, FakeClock], tmp_path: Path) -> None:
    uploads, _ = service
    teacher = uploads.directory.people["t-martin"]
    author = Author("t-martin", "Mme Martin", "teacher")
    old = await uploads.take(teacher, spooled(tmp_path, PDF), "application/pdf", "juin.pdf")
    shared = await uploads.take(teacher, spooled(tmp_path, PDF), "application/pdf", "charte.pdf")
    june = await uploads.store.append(Draft("class:cp-a", "m1", 1_000, author, "post", {"text": "juin"}))
    september = await uploads.store.append(Draft("class:cp-a", "m2", 9_000_000, author, "post", {"text": "sept"}))
    await uploads.uploads.add_references([Reference(old.id, "class:cp-a", june.message.seq, ()),
                                          Reference(shared.id, "class:cp-a", june.message.seq, ()),
                                          Reference(shared.id, "class:cp-a", september.message.seq, ())])
    section = UploadsPrivacy(uploads)
    assert await section.purge_channels(["class:cp-a"], before=5_000.0, dry_run=True) == 1
    assert await uploads.uploads.get_upload(old.id) is not None
    assert await section.purge_channels(["class:cp-a"], before=5_000.0, dry_run=False) == 1
    assert await uploads.uploads.get_upload(old.id) is None
    assert await uploads.blobs.size(old.variants["original"].key) is None
    assert [r.seq for r in await uploads.uploads.references(shared.id)] == [september.message.seq]
