"""`MongoBoardStore`: the production `BoardStore` on MongoDB, through PyMongo's native async API.

Collections (in the message store's database): `board_reads` (one document per logged move of a
read mark) and `board_reminders` (`_id` "channel#seq", the time of the last reminder claimed).
`claim_reminder` is one single-document upsert that matches only a reminder older than the
window: a duplicate key error means another gateway claimed it first. Same client defaults,
write concern and "try again shortly" mapping as persistence/mongo.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from persistence.board_store import ReadMove, first_times
from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]
WHAT = "the MongoDB board store"

READ_INDEXES = [
    IndexModel([("channel", ASCENDING), ("upto", ASCENDING)], name="channel_upto"),
    IndexModel([("user_id", ASCENDING), ("at", ASCENDING)], name="user_at"),
    IndexModel([("at", ASCENDING)], name="at"),
]


class MongoBoardStore:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._reads: Collection = db.get_collection("board_reads")
        self._reminders: Collection = db.get_collection("board_reminders")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, WHAT):
            await self._reads.create_indexes(READ_INDEXES)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    async def record_reads(self, moves: Sequence[ReadMove]) -> None:
        docs = [{"user_id": m.user_id, "channel": m.channel, "after": m.after, "upto": m.upto, "at": m.at}
                for m in moves]
        if not docs:
            return
        with unavailable_errors(self, WHAT):
            await self._reads.insert_many(docs, ordered=False)

    async def last_reads(self, user_ids: Iterable[str]) -> dict[str, float]:
        ids = list(dict.fromkeys(user_ids))
        pipeline: list[Doc] = [{"$match": {"user_id": {"$in": ids}}},
                               {"$group": {"_id": "$user_id", "at": {"$max": "$at"}}}]
        with unavailable_errors(self, WHAT):
            docs = await (await self._reads.aggregate(pipeline)).to_list()
        return {doc["_id"]: float(doc["at"]) for doc in docs}

    async def first_reads(self, wanted: Mapping[str, Iterable[int]], user_ids: Iterable[str]
                          ) -> dict[str, dict[int, float]]:
        users = set(user_ids)
        out: dict[str, dict[int, float]] = {}
        with unavailable_errors(self, WHAT):
            for channel, asked in wanted.items():
                seqs = sorted(set(asked))
                if not seqs:
                    out[channel] = {}
                    continue
                query = {"channel": channel, "upto": {"$gte": seqs[0]}, "after": {"$lt": seqs[-1]}}
                docs = await self._reads.find(query, {"_id": False}).to_list()
                out[channel] = first_times(((d["after"], d["upto"], d["at"]) for d in docs
                                            if d["user_id"] in users), seqs)
        return out

    async def claim_reminder(self, channel: str, seq: int, at: float, every: float) -> float | None:
        key = f"{channel}#{seq}"
        with unavailable_errors(self, WHAT):
            try:
                await self._reminders.find_one_and_update(
                    {"_id": key, "at": {"$lte": at - every}}, {"$set": {"at": at}}, upsert=True,
                    return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:
                doc = await self._reminders.find_one({"_id": key})
                return at if doc is None else float(doc["at"])
        return None

    async def release_reminder(self, channel: str, seq: int, at: float) -> None:
        with unavailable_errors(self, WHAT):
            await self._reminders.delete_one({"_id": f"{channel}#{seq}", "at": at})

    async def reads_of(self, user_id: str) -> list[ReadMove]:
        with unavailable_errors(self, WHAT):
            cursor = self._reads.find({"user_id": user_id}).sort([("at", ASCENDING), ("_id", ASCENDING)])
            docs = await cursor.to_list()
        return [ReadMove(d["user_id"], d["channel"], int(d["after"]), int(d["upto"]), float(d["at"]))
                for d in docs]

    async def forget_user(self, user_id: str) -> int:
        with unavailable_errors(self, WHAT):
            result = await self._reads.delete_many({"user_id": user_id})
        return result.deleted_count

    async def purge(self, before: float) -> int:
        with unavailable_errors(self, WHAT):
            await self._reminders.delete_many({"at": {"$lt": before}})
            result = await self._reads.delete_many({"at": {"$lt": before}})
        return result.deleted_count
