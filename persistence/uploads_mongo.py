"""`MongoUploadStore`: the production `UploadStore` on MongoDB, through PyMongo's native async API.

Collections (in the message store's database): `upload_files` (`_id` the upload id),
`upload_refs` (`_id` `{upload, channel, seq}`, with `students` indexed: the photos of a child)
and `image_consents` (`_id` `{student, guardian}`). Every write is one single-document
operation (atomic on the primary); `add_references` writes each reference, then marks the
upload attached. Writes acknowledged by a majority, reads from the primary, "try again
shortly" errors mapped to `StoreUnavailable`, as in persistence/mongo.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors
from persistence.upload_store import Consent, Reference, Upload, Variant
from school.consent import ConsentState

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]
WHAT = "the MongoDB upload store"


def _upload(doc: Doc) -> Upload:
    return Upload(doc["_id"], doc["owner"], doc["type"], doc["name"], doc["created"],
                  {n: Variant.from_dict(v) for n, v in doc["variants"].items()}, bool(doc.get("attached")))


def _reference(doc: Doc) -> Reference:
    key = doc["_id"]
    return Reference(key["upload"], key["channel"], key["seq"], tuple(doc.get("students", ())))


class MongoUploadStore:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._files: Collection = db.get_collection("upload_files")
        self._refs: Collection = db.get_collection("upload_refs")
        self._consents: Collection = db.get_collection("image_consents")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, WHAT):
            await self._files.create_indexes([
                IndexModel([("owner", ASCENDING), ("created", ASCENDING)], name="owner_created"),
                IndexModel([("created", ASCENDING)], name="unattached",
                           partialFilterExpression={"attached": False}),
            ])
            await self._refs.create_indexes([
                IndexModel([("_id.upload", ASCENDING)], name="upload"),
                IndexModel([("students", ASCENDING)], name="students"),
                IndexModel([("_id.channel", ASCENDING)], name="channel"),
            ])
            await self._consents.create_indexes([IndexModel([("_id.guardian", ASCENDING)], name="guardian")])

    async def close(self) -> None:
        self.closed = True
        await self._client.close()

    async def add_upload(self, upload: Upload) -> None:
        with unavailable_errors(self, WHAT):
            await self._files.insert_one({
                "_id": upload.id, "owner": upload.owner, "type": upload.type, "name": upload.name,
                "created": upload.created, "attached": upload.attached,
                "variants": {n: v.to_dict() for n, v in upload.variants.items()}})

    async def get_upload(self, upload_id: str) -> Upload | None:
        with unavailable_errors(self, WHAT):
            doc = await self._files.find_one({"_id": upload_id})
        return None if doc is None else _upload(doc)

    async def uploads_of(self, owner: str) -> list[Upload]:
        with unavailable_errors(self, WHAT):
            docs = await self._files.find({"owner": owner}).sort([("created", ASCENDING), ("_id", ASCENDING)]) \
                .to_list()
        return [_upload(d) for d in docs]

    async def unattached_before(self, created: float, limit: int = 500) -> list[Upload]:
        with unavailable_errors(self, WHAT):
            docs = await self._files.find({"attached": False, "created": {"$lt": created}}) \
                .sort("created", ASCENDING).limit(limit).to_list()
        return [_upload(d) for d in docs]

    async def delete_upload(self, upload_id: str, *, only_unattached: bool = False) -> bool:
        query: Doc = {"_id": upload_id, "attached": False} if only_unattached else {"_id": upload_id}
        with unavailable_errors(self, WHAT):
            result = await self._files.delete_one(query)
            if result.deleted_count:
                await self._refs.delete_many({"_id.upload": upload_id})
        return result.deleted_count > 0

    async def add_references(self, references: Iterable[Reference]) -> None:
        with unavailable_errors(self, WHAT):
            for ref in references:
                key = {"upload": ref.upload_id, "channel": ref.channel, "seq": ref.seq}
                doc = {"_id": key, "students": list(ref.students)}
                await self._refs.replace_one({"_id": key}, doc, upsert=True)
                await self._files.update_one({"_id": ref.upload_id}, {"$set": {"attached": True}})

    async def delete_references(self, references: Iterable[Reference]) -> None:
        with unavailable_errors(self, WHAT):
            for ref in references:
                key = {"upload": ref.upload_id, "channel": ref.channel, "seq": ref.seq}
                await self._refs.delete_one({"_id": key})

    async def references(self, upload_id: str) -> list[Reference]:
        with unavailable_errors(self, WHAT):
            docs = await self._refs.find({"_id.upload": upload_id}).to_list()
        return sorted((_reference(d) for d in docs), key=lambda r: (r.channel, r.seq))

    async def references_in(self, channels: Iterable[str]) -> list[Reference]:
        with unavailable_errors(self, WHAT):
            docs = await self._refs.find({"_id.channel": {"$in": list(dict.fromkeys(channels))}}).to_list()
        return sorted((_reference(d) for d in docs), key=lambda r: (r.channel, r.seq))

    async def references_of_student(self, student_id: str) -> list[Reference]:
        with unavailable_errors(self, WHAT):
            docs = await self._refs.find({"students": student_id}).to_list()
        return sorted((_reference(d) for d in docs), key=lambda r: (r.channel, r.seq))

    async def set_consent(self, consent: Consent) -> ConsentState:
        key = {"student": consent.student_id, "guardian": consent.guardian_id}
        with unavailable_errors(self, WHAT):
            before = await self._consents.find_one_and_replace(
                {"_id": key}, {"_id": key, "state": consent.state.value, "updated": consent.updated}, upsert=True)
        return ConsentState.NOT_ASKED if before is None else ConsentState(before["state"])

    async def consents(self, student_ids: Iterable[str]) -> dict[str, dict[str, ConsentState]]:
        ids = list(dict.fromkeys(student_ids))
        out: dict[str, dict[str, ConsentState]] = {}
        if not ids:
            return out
        with unavailable_errors(self, WHAT):
            async for doc in self._consents.find({"_id.student": {"$in": ids}}):
                out.setdefault(doc["_id"]["student"], {})[doc["_id"]["guardian"]] = ConsentState(doc["state"])
        return out

    async def consents_by(self, guardian_id: str) -> list[Consent]:
        with unavailable_errors(self, WHAT):
            docs = await self._consents.find({"_id.guardian": guardian_id}).to_list()
        out = [Consent(d["_id"]["student"], guardian_id, ConsentState(d["state"]), d["updated"]) for d in docs]
        return sorted(out, key=lambda c: c.student_id)

    async def erase_consents_by(self, guardian_id: str, *, dry_run: bool = False) -> int:
        with unavailable_errors(self, WHAT):
            if dry_run:
                return await self._consents.count_documents({"_id.guardian": guardian_id})
            result = await self._consents.delete_many({"_id.guardian": guardian_id})
        return result.deleted_count
