"""`MongoPrivacyStore`: the production `PrivacyStore`, collections `privacy_*` in the store's database.

One unfinished erasure per person: its document's `_id` is `open:<person id>` until it is
finished, when it is copied under a fresh id and the open one removed. A year's `_id` is
`<school>/<ends>`; a run claim's `<job>/<day>` (an insert: the duplicate key loses).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors
from persistence.privacy_store import ErasureJob, Leaver, SchoolYear

Doc = dict[str, Any]
WHAT = "the MongoDB privacy store"


def _job(doc: Doc) -> ErasureJob:
    return ErasureJob(doc["person_id"], doc["started_at"], doc["requested_by"], doc.get("school_id"),
                      dict(doc.get("steps") or {}), doc.get("finished_at"))


def _year(doc: Doc) -> SchoolYear:
    channels = doc.get("channels")
    return SchoolYear(doc["school_id"], doc["ends"], int(doc["purge_after_months"]),
                      None if channels is None else tuple(channels), doc.get("purged_at"))


class MongoPrivacyStore:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._jobs: AsyncCollection[Doc] = db.get_collection("privacy_erasures")
        self._years: AsyncCollection[Doc] = db.get_collection("privacy_years")
        self._leavers: AsyncCollection[Doc] = db.get_collection("privacy_leavers")
        self._runs: AsyncCollection[Doc] = db.get_collection("privacy_runs")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, WHAT):
            await self._jobs.create_indexes([IndexModel([("person_id", ASCENDING), ("started_at", ASCENDING)],
                                                        name="person_started")])

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    async def start_erasure(self, job: ErasureJob) -> ErasureJob:
        doc = {"_id": f"open:{job.person_id}", "person_id": job.person_id, "started_at": job.started_at,
               "requested_by": job.requested_by, "school_id": job.school_id, "steps": dict(job.steps),
               "finished_at": None}
        with unavailable_errors(self, WHAT):
            with contextlib.suppress(DuplicateKeyError):  # an unfinished job is there: it goes on
                await self._jobs.insert_one(doc)
            found = await self._jobs.find_one({"_id": f"open:{job.person_id}"})
        return _job(found or doc)

    async def erasure_step(self, person_id: str, step: str, count: int) -> None:
        with unavailable_errors(self, WHAT):
            await self._jobs.update_one({"_id": f"open:{person_id}"}, {"$set": {f"steps.{step}": count}})

    async def finish_erasure(self, person_id: str, at: float) -> None:
        with unavailable_errors(self, WHAT):
            doc = await self._jobs.find_one({"_id": f"open:{person_id}"})
            if doc is None:
                return
            await self._jobs.insert_one(doc | {"_id": uuid.uuid4().hex, "finished_at": at})
            await self._jobs.delete_one({"_id": f"open:{person_id}"})

    async def unfinished_erasures(self) -> list[ErasureJob]:
        with unavailable_errors(self, WHAT):
            docs = await self._jobs.find({"finished_at": None}).sort("started_at", ASCENDING).to_list()
        return [_job(d) for d in docs]

    async def erasures(self, person_id: str) -> list[ErasureJob]:
        with unavailable_errors(self, WHAT):
            docs = await self._jobs.find({"person_id": person_id}).sort("started_at", ASCENDING).to_list()
        return [_job(d) for d in docs]

    async def set_year(self, year: SchoolYear) -> None:
        with unavailable_errors(self, WHAT):
            await self._years.update_one(
                {"_id": f"{year.school_id}/{year.ends}"},
                {"$set": {"purge_after_months": year.purge_after_months},
                 "$setOnInsert": {"school_id": year.school_id, "ends": year.ends, "channels": None,
                                  "purged_at": None}}, upsert=True)

    async def years(self, school_id: str | None = None) -> list[SchoolYear]:
        query = {} if school_id is None else {"school_id": school_id}
        with unavailable_errors(self, WHAT):
            docs = await self._years.find(query).sort([("school_id", ASCENDING), ("ends", ASCENDING)]).to_list()
        return [_year(d) for d in docs]

    async def drop_year(self, school_id: str, ends: str) -> bool:
        with unavailable_errors(self, WHAT):
            result = await self._years.delete_one({"_id": f"{school_id}/{ends}", "channels": None})
        return result.deleted_count == 1

    async def freeze_year(self, school_id: str, ends: str, channels: list[str]) -> None:
        with unavailable_errors(self, WHAT):
            await self._years.update_one({"_id": f"{school_id}/{ends}", "channels": None},
                                         {"$set": {"channels": sorted(set(channels))}})

    async def year_purged(self, school_id: str, ends: str, at: float) -> None:
        with unavailable_errors(self, WHAT):
            await self._years.update_one({"_id": f"{school_id}/{ends}", "purged_at": None},
                                         {"$set": {"purged_at": at}})

    async def record_leaver(self, leaver: Leaver) -> None:
        with unavailable_errors(self, WHAT):
            await self._leavers.update_one(
                {"_id": leaver.person_id},
                {"$setOnInsert": {"school_id": leaver.school_id, "left_at": leaver.left_at}}, upsert=True)

    async def forget_leaver(self, person_id: str) -> None:
        with unavailable_errors(self, WHAT):
            await self._leavers.delete_one({"_id": person_id})

    async def leavers(self) -> list[Leaver]:
        with unavailable_errors(self, WHAT):
            docs = await self._leavers.find({}).sort([("left_at", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [Leaver(d["_id"], d["school_id"], d["left_at"]) for d in docs]

    async def claim_run(self, job: str, day: str, runner: str, at: float) -> bool:
        with unavailable_errors(self, WHAT):
            try:
                await self._runs.insert_one({"_id": f"{job}/{day}", "runner": runner, "at": at})
            except DuplicateKeyError:
                return False
        return True
