"""`MongoAuditStore`: the production `AuditStore`, collection `audit_log` in the store's database.

Ids come from a counter document (`audit_counters`, `_id` "audit_log"), incremented atomically
with `find_one_and_update`, so they grow across every gateway. The adapter has no update
method; that other tools cannot change entries is MongoDB's access control (give the
application's user a role with only `find`, `insert` and `remove` on `audit_log`).
Writes acknowledged by a majority, reads from the primary, errors mapped as in
persistence/mongo.py.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from persistence.audit_store import AuditEntry
from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors

Doc = dict[str, Any]
INDEXES = [
    IndexModel([("school", ASCENDING), ("_id", DESCENDING)], name="school_id"),
    IndexModel([("target", ASCENDING), ("_id", DESCENDING)], name="target_id"),
    IndexModel([("at", ASCENDING)], name="at"),
]
WHAT = "the MongoDB audit store"


def _entry(doc: Doc) -> AuditEntry:
    return AuditEntry(doc["at"], doc["actor"], doc["action"], doc["target"], doc.get("school"),
                      dict(doc.get("details") or {}), int(doc["_id"]))


class MongoAuditStore:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._log: AsyncCollection[Doc] = db.get_collection("audit_log")
        self._counters: AsyncCollection[Doc] = db.get_collection("audit_counters")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, WHAT):
            await self._log.create_indexes(INDEXES)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    async def append(self, entry: AuditEntry) -> int:
        with unavailable_errors(self, WHAT):
            counter = await self._counters.find_one_and_update(
                {"_id": "audit_log"}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
            new_id = int(counter["n"]) if counter else 1
            await self._log.insert_one({"_id": new_id, "at": entry.at, "actor": entry.actor,
                                        "action": entry.action, "target": entry.target, "school": entry.school,
                                        "details": dict(entry.details)})
        return new_id

    async def append_many(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        with unavailable_errors(self, WHAT):
            counter = await self._counters.find_one_and_update(
                {"_id": "audit_log"}, {"$inc": {"n": len(entries)}}, upsert=True,
                return_document=ReturnDocument.AFTER)
            first = (int(counter["n"]) if counter else len(entries)) - len(entries) + 1
            await self._log.insert_many([
                {"_id": first + i, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
                 "school": e.school, "details": dict(e.details)} for i, e in enumerate(entries)], ordered=True)

    async def entries(self, *, school: str | None = None, target: str | None = None,
                      before: int | None = None, limit: int = 100) -> list[AuditEntry]:
        query: Doc = {}
        if school is not None:
            query["school"] = school
        if target is not None:
            query["target"] = target
        if before is not None:
            query["_id"] = {"$lt": before}
        if limit <= 0:
            return []
        with unavailable_errors(self, WHAT):
            docs = await self._log.find(query).sort("_id", DESCENDING).limit(limit).to_list()
        return [_entry(d) for d in docs]

    async def purge(self, before: float) -> int:
        with unavailable_errors(self, WHAT):
            return (await self._log.delete_many({"at": {"$lt": before}})).deleted_count
