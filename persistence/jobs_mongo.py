"""`MongoJobQueue`: the `JobQueue` on MongoDB, collection `notify_jobs` (`_id` the job id).

A claim is `find_one_and_update` per job (atomic on one document): a ready, due job whose lease
has run out gets a new lease and token. Ending a job matches its token. Ended jobs keep their
document (the id keeps `enqueue` idempotent) until a TTL index on `ended` removes them after
`DONE_RETENTION`.
"""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from persistence.jobs import DONE_RETENTION, Job, NewJob
from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors

Doc = dict[str, Any]
WHAT = "the MongoDB job queue"
INDEXES = [
    IndexModel([("state", ASCENDING), ("not_before", ASCENDING)], name="due"),
    IndexModel([("ended", ASCENDING)], name="ended_ttl", expireAfterSeconds=DONE_RETENTION),
]


class MongoJobQueue:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._jobs: AsyncCollection[Doc] = db.get_collection("notify_jobs")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, WHAT):
            await self._jobs.create_indexes(INDEXES)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    async def enqueue(self, job_id: str, kind: str, payload: dict[str, Any], not_before: float = 0.0) -> bool:
        with unavailable_errors(self, WHAT):
            try:
                await self._jobs.insert_one({"_id": job_id, "kind": kind, "payload": payload,
                                             "not_before": not_before, "attempts": 0, "state": "ready",
                                             "lease_until": 0.0, "token": None})
            except DuplicateKeyError:
                return False
        return True

    async def enqueue_many(self, jobs: list[NewJob]) -> int:
        if not jobs:
            return 0
        docs = [{"_id": j.id, "kind": j.kind, "payload": j.payload, "not_before": j.not_before, "attempts": 0,
                 "state": "ready", "lease_until": 0.0, "token": None} for j in jobs]
        with unavailable_errors(self, WHAT):
            try:
                return len((await self._jobs.insert_many(docs, ordered=False)).inserted_ids)
            except BulkWriteError as exc:  # duplicates are known jobs: the others went in
                return int(exc.details.get("nInserted", 0))

    async def claim(self, worker: str, now: float, limit: int, lease: float) -> list[Job]:
        jobs: list[Job] = []
        with unavailable_errors(self, WHAT):
            for _ in range(limit):
                token = f"{worker}:{uuid.uuid4().hex}"
                doc = await self._jobs.find_one_and_update(
                    {"state": "ready", "not_before": {"$lte": now}, "lease_until": {"$lte": now}},
                    {"$set": {"lease_until": now + lease, "token": token}, "$inc": {"attempts": 1}},
                    sort=[("not_before", ASCENDING)], return_document=ReturnDocument.BEFORE)
                if doc is None:
                    break
                jobs.append(Job(doc["_id"], doc["kind"], doc["payload"], doc["attempts"], token))
        return jobs

    async def _end(self, job: Job, update: Doc) -> bool:
        with unavailable_errors(self, WHAT):
            result = await self._jobs.update_one({"_id": job.id, "token": job.token, "state": "ready"}, update)
        return result.modified_count == 1

    def _ended(self, state: str) -> Doc:
        return {"$set": {"state": state, "token": None, "ended": datetime.datetime.now(datetime.UTC),
                         "ended_at": time.time()}}

    async def complete(self, job: Job) -> bool:
        return await self._end(job, self._ended("done"))

    async def fail(self, job: Job) -> bool:
        return await self._end(job, self._ended("dead"))

    async def retry(self, job: Job, not_before: float) -> bool:
        return await self._end(job, {"$set": {"not_before": not_before, "lease_until": 0.0, "token": None}})

    async def pending(self) -> int:
        with unavailable_errors(self, WHAT):
            return await self._jobs.count_documents({"state": "ready"})
