"""Uploaded files: taking them in, serving them privately, forgetting the unused ones, and the
person's share of them for the privacy export and erasure.

- `take` stores a file the HTTP layer has spooled to disk and identified by its bytes: a photo
  is re-encoded in the imaging pool (realtime/services/imaging.py: metadata removed, orientation
  applied, `screen` and `thumb` variants), a PDF kept as sent; the blobs go to the `BlobStore`
  under random keys, the record to the `UploadStore`.
- `readable` answers the upload and variant a person may download, or `NotFound` (never
  `Forbidden`: an id is not confirmed to who may not see it). Its uploader may; otherwise a
  message of a channel the person may read must carry it, and a photo hidden for lack of
  consent only to staff and the guardians of its children.
- `sweep` removes uploads never attached after a day (a background task).
- `UploadsPrivacy` is the privacy section `uploads` (export, `files`, erase).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Protocol

import structlog

from auth import policy
from persistence.blob_store import BlobStore, new_key
from persistence.store import Store
from persistence.upload_store import Reference, Upload, UploadStore, Variant
from realtime.services.attachments import CONSENT_CHANNELS
from realtime.services.imaging import ImageRefused, ImagingPool
from school.channels import parse_channel
from school.consent import may_see_hidden, missing
from school.directory import Directory, Person
from school.errors import BadRequest, NotFound, RateLimited, TooLarge
from school.uploads import is_image, safe_filename

log = structlog.get_logger("liaison.uploads")

UNATTACHED_TTL = 24 * 3600.0
SWEEP_PERIOD = 600.0


class UploadRate:
    """At most `per_minute` uploads per user in any minute (this process)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._times: dict[str, collections.deque[float]] = {}

    def take(self, user_id: str) -> None:
        now = self.clock()
        times = self._times.setdefault(user_id, collections.deque())
        while times and times[0] <= now - 60:
            times.popleft()
        if len(times) >= self.per_minute:
            raise RateLimited(f"at most {self.per_minute} uploads a minute: wait a little", times[0] + 60 - now)
        times.append(now)
        if len(self._times) > 10_000:
            self._times = {u: t for u, t in self._times.items() if t and t[-1] > now - 60}


class Uploads:
    def __init__(self, uploads: UploadStore, blobs: BlobStore, store: Store, directory: Directory,
                 imaging: ImagingPool, clock: Callable[[], float] = time.time) -> None:
        self.uploads = uploads
        self.blobs = blobs
        self.store = store
        self.directory = directory
        self.imaging = imaging
        self.clock = clock
        # uploads taken in at once (body read, re-encoded, stored) per process; the others wait
        # unread, their bytes held back by TCP, so a burst of uploads cannot take the CPU that
        # live delivery needs
        self.gate = asyncio.Semaphore(max(2, imaging.workers * 2))

    async def take(self, person: Person, spooled: str, media_type: str, filename: str | None) -> Upload:
        """Store the file at `spooled` (a temporary file the caller removes)."""
        work = await asyncio.to_thread(tempfile.mkdtemp, prefix="liaison-upload-")
        try:
            if is_image(media_type):
                try:
                    encoded = await self.imaging.reencode(spooled, work)
                except ImageRefused as exc:
                    raise (TooLarge if exc.too_large else BadRequest)(exc.message) from None
                files = {name: (e.path, Variant(new_key(), e.type, 0, e.width, e.height))
                         for name, e in encoded.items()}
                media_type = encoded["original"].type
            else:
                files = {"original": (spooled, Variant(new_key(), media_type, 0))}
            variants: dict[str, Variant] = {}
            try:
                for name, (path, v) in files.items():
                    size = await self.blobs.put(v.key, path)
                    variants[name] = Variant(v.key, v.type, size, v.width, v.height)
                upload = Upload(uuid.uuid4().hex + uuid.uuid4().hex[:8], person.id, media_type,
                                safe_filename(filename, media_type), self.clock(), variants)
                await self.uploads.add_upload(upload)
            except BaseException:
                for v in variants.values():
                    with contextlib.suppress(Exception):
                        await self.blobs.delete(v.key)
                raise
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        log.info("uploaded", upload=upload.id, user=person.id, type=upload.type, size=upload.size)
        return upload

    async def readable(self, person: Person, upload_id: str, variant: str) -> tuple[Upload, Variant]:
        gone = NotFound("there is no such file, or you may not see it")
        upload = await self.uploads.get_upload(upload_id)
        if upload is None or not await self._may_read(person, upload):
            raise gone
        chosen = upload.variants.get(variant)
        if chosen is None:
            raise NotFound(f"this file has no variant {variant!r} (original, screen or thumb for photos)")
        return upload, chosen

    async def _may_read(self, person: Person, upload: Upload) -> bool:
        if upload.owner == person.id:
            return True
        refs = await self.uploads.references(upload.id)
        consents = await self.uploads.consents({s for r in refs for s in r.students})
        for ref in refs:
            channel = parse_channel(ref.channel)
            if channel is None or not policy.may_read(self.directory, person.id, channel):
                continue
            message = await self.store.get(ref.channel, ref.seq)
            if message is None or message.deleted:
                continue
            if (upload.is_image and channel.type in CONSENT_CHANNELS
                    and missing(self.directory, ref.students, consents)
                    and not may_see_hidden(self.directory, person.id, ref.students)):
                continue
            return True
        return False

    async def remove(self, upload: Upload) -> None:
        for v in upload.variants.values():
            await self.blobs.delete(v.key)
        await self.uploads.delete_upload(upload.id)

    async def sweep(self) -> int:
        """Remove the uploads never attached for a day; how many."""
        removed = 0
        for upload in await self.uploads.unattached_before(self.clock() - UNATTACHED_TTL):
            # the record first, and only while still unattached (a message may attach it meanwhile,
            # another gateway may sweep it too): then its blobs
            if await self.uploads.delete_upload(upload.id, only_unattached=True):
                for v in upload.variants.values():
                    await self.blobs.delete(v.key)
                removed += 1
        if removed:
            log.info("unattached_uploads_removed", count=removed)
        return removed

    async def sweep_every(self, period: float = SWEEP_PERIOD) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # a store hiccup must not end the task
                log.warning("upload_sweep_failed", error=type(exc).__name__)
            await asyncio.sleep(period)


class UploadsPrivacy:
    """The privacy section `uploads`: a person's uploaded files (metadata, and their bytes
    through `files`) and the image consents they gave as a guardian."""

    name = "uploads"

    def __init__(self, uploads: Uploads, photos: PhotoRefresh | None = None) -> None:
        self.service = uploads
        self.photos = photos  # erased consents hide the photos of those children at once

    async def export(self, person_id: str) -> object:
        store = self.service.uploads
        return {
            "files": [{"id": u.id, "type": u.type, "name": u.name, "size": u.size, "created": u.created,
                       "attached": u.attached,
                       "variants": {n: {"type": v.type, "size": v.size, "width": v.width, "height": v.height}
                                    for n, v in u.variants.items()}}
                      for u in await store.uploads_of(person_id)],
            "image_consents": [{k: (v.value if k == "state" else v) for k, v in asdict(c).items()
                                if k != "guardian_id"} for c in await store.consents_by(person_id)],
        }

    async def files(self, person_id: str) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        """Each uploaded original as `(archive path, its bytes in chunks)`."""
        for u in await self.service.uploads.uploads_of(person_id):
            yield f"{u.id}-{u.name}", self.service.blobs.read(u.variants["original"].key)

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        store = self.service.uploads
        mine = await store.uploads_of(person_id)
        children = [c.student_id for c in await store.consents_by(person_id)]
        count = len(mine) + await store.erase_consents_by(person_id, dry_run=dry_run)
        if not dry_run:
            for upload in mine:
                await self.service.remove(upload)
            if self.photos is not None:
                for student_id in children:
                    await self.photos.refresh_photos_of(student_id)
        return count


    async def purge_channels(self, channels: list[str], before: float, *, dry_run: bool) -> int:
        """The school year's purge: the uploads carried only by messages of these channels older
        than `before` (seconds; those messages are purged) are removed with their blobs; how many."""
        store, messages = self.service.uploads, self.service.store
        purged: list[Reference] = []
        for ref in await store.references_in(channels):
            message = await messages.get(ref.channel, ref.seq)
            if message is None or message.ts < before * 1000:
                purged.append(ref)
        gone = {(r.upload_id, r.channel, r.seq) for r in purged}
        removed = 0
        for upload_id in dict.fromkeys(r.upload_id for r in purged):
            left = [r for r in await store.references(upload_id) if (r.upload_id, r.channel, r.seq) not in gone]
            upload = await store.get_upload(upload_id)
            if left or upload is None:
                continue
            removed += 1
            if not dry_run:
                await self.service.remove(upload)
        if not dry_run:
            await store.delete_references(purged)
        return removed


class PhotoRefresh(Protocol):
    async def refresh_photos_of(self, student_id: str) -> int: ...
